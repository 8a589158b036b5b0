// Who sent a request, as far as the connection tells: the client's address and, when it
// presented a certificate that verified against tls.clientCaFile, that certificate's identity.
// A request a hit thread handed over arrives from 127.0.0.1; the main thread's internal listener
// marks it with the client the hit thread saw (forwarded-client.ts), and clientInfo() answers
// with that. This is the one place later layers (authentication, rules, logs) ask.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface ClientCertificate {
  /** The subject's common name ('' when it has none). */
  readonly subjectCN: string;
  /** SHA-256 of the DER certificate, as openssl prints it: AB:CD:... */
  readonly fingerprint256: string;
}

export interface ClientInfo {
  readonly address: string;
  /** The client's connection is TLS (the default token realm is https then). */
  readonly secure?: boolean;
  /** Present only for a certificate verified against tls.clientCaFile. */
  readonly certificate?: ClientCertificate;
}

// Keys on the request and socket objects themselves: nothing is kept anywhere else.
const FORWARDED_CLIENT = Symbol('wharf.forwardedClient');
const CONNECTION_CLIENT = Symbol('wharf.connectionClient');

interface MarkedRequest extends IncomingMessage {
  [FORWARDED_CLIENT]?: ClientInfo;
}
interface MarkedSocket extends Socket {
  [CONNECTION_CLIENT]?: ClientInfo;
}

export function clientInfo(req: IncomingMessage): ClientInfo {
  const forwarded = (req as MarkedRequest)[FORWARDED_CLIENT];
  if (forwarded) return forwarded;
  // Read once per connection: its address and certificate cannot change (renegotiation is off),
  // and a keep-alive connection carries many requests. Kept, it also outlives the connection,
  // whose peer address is gone once it closes.
  return socketClient(req.socket);
}

/** The client of a connection itself (no hit thread's handover on it). */
export function socketClient(socket: Socket): ClientInfo {
  const marked = socket as MarkedSocket;
  return (marked[CONNECTION_CLIENT] ??= connectionClient(marked));
}

/** For the internal listener alone, once it has checked the hit thread's secret. */
export function markForwardedClient(req: IncomingMessage, client: ClientInfo): void {
  (req as MarkedRequest)[FORWARDED_CLIENT] = client;
}

function connectionClient(socket: Socket): ClientInfo {
  const certificate = readCertificate(socket);
  const address = socket.remoteAddress ?? '';
  const tls = 'encrypted' in socket ? { secure: true } : {};
  return certificate ? { address, ...tls, certificate } : { address, ...tls };
}

function readCertificate(socket: Socket): ClientCertificate | null {
  if (!('encrypted' in socket)) return null;
  const tls = socket as TLSSocket;
  if (!tls.authorized) return null;
  const peer = tls.getPeerCertificate();
  if (!peer || !peer.fingerprint256) return null;
  const cn: unknown = peer.subject?.CN;
  return { subjectCN: Array.isArray(cn) ? String(cn[0] ?? '') : typeof cn === 'string' ? cn : '', fingerprint256: peer.fingerprint256 };
}
