// wharf's HTTPS server: node:https around the same request listener as the plain server, HTTP/1.1
// only (Go clients, containerd and dockerd among them, take h2 when it is offered, and wharf
// serves HTTP/1.1), TLS 1.2 and up, and client certificates as tls.clientCaFile and
// requireClientCert say. Its certificate is swapped while it runs (use()): connections already
// open keep the one they started with.
import type { RequestListener } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsMaterial } from './tls-files.ts';

export interface TlsServerSettings {
  /** Set: ask for a client certificate and verify it against these CAs (in the material). */
  readonly clientCaFile?: string | undefined;
  /** Refuse connections that present none. */
  readonly requireClientCert: boolean;
}

/** Session ticket keys, shared by every thread so a client resumes on whichever accepts it. */
export const TICKET_KEYS_BYTES = 48;

export class TlsServer {
  readonly server: Server;
  readonly #ticketKeys: Buffer;

  constructor(settings: TlsServerSettings, material: TlsMaterial, ticketKeys: Buffer, listener: RequestListener, logger: Logger) {
    this.#ticketKeys = ticketKeys;
    const clientCa = settings.clientCaFile !== undefined;
    this.server = createServer(
      {
        ...contextOptions(material, ticketKeys),
        ALPNProtocols: ['http/1.1'],
        requestCert: clientCa,
        // Node refuses a certificate that does not verify only when it also requires one.
        rejectUnauthorized: clientCa && settings.requireClientCert,
      },
      listener,
    );
    // Before the HTTP layer sees the connection (prepended to https' own listener).
    this.server.prependListener('secureConnection', (socket: TLSSocket) => {
      // A client certificate is checked once per connection; renegotiation could swap it.
      socket.disableRenegotiation();
      // An optional certificate, but one that does not verify, is refused as Go
      // (VerifyClientCertIfGiven) and nginx (ssl_verify_client optional) refuse it: a client
      // that sent one meant to be known by it, and must not silently become anonymous.
      if (clientCa && !socket.authorized && presentedCertificate(socket)) {
        logger.info({ client: socket.remoteAddress, reason: socket.authorizationError }, 'TLS client certificate refused');
        socket.destroy();
      }
    });
    // Scanners and clients that do not trust wharf's CA end here: worth a line when debugging only.
    this.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      logger.debug({ client: socket.remoteAddress, reason: err.code ?? err.message }, 'TLS handshake failed');
    });
  }

  /** New connections get this certificate from now on. */
  use(material: TlsMaterial): void {
    this.server.setSecureContext(contextOptions(material, this.#ticketKeys));
  }
}

// setSecureContext() resets every option it is not given, so both paths build the same set here.
function contextOptions(material: TlsMaterial, ticketKeys: Buffer): SecureContextOptions {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca === undefined ? {} : { ca: material.ca }),
    minVersion: 'TLSv1.2',
    ticketKeys,
  };
}

function presentedCertificate(socket: TLSSocket): boolean {
  const peer = socket.getPeerCertificate();
  return peer !== null && Object.keys(peer).length > 0;
}
