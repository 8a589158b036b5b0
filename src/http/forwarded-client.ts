// How a hit thread tells the main thread who the client of a handed-over request is: headers on
// the loopback hop, believed only by the main thread's internal listener and only next to the
// secret this process drew at start. Any local process can reach that listener, and every
// client can send any header, so without the secret either could name its own address and
// certificate; elsewhere these headers mean nothing (clientInfo() never reads headers).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, RequestListener } from 'node:http';
import { isIP } from 'node:net';
import { markForwardedClient, type ClientInfo } from './client-info.ts';

export const FORWARDED_CLIENT_HEADERS = {
  secret: 'x-wharf-forward-secret',
  address: 'x-wharf-client-address',
  subjectCN: 'x-wharf-client-cert-cn',
  fingerprint256: 'x-wharf-client-cert-sha256',
  secure: 'x-wharf-client-tls',
  /** The hit thread can follow a running fill's file itself (http/fill-handover.ts). */
  followsFills: 'x-wharf-follows-fills',
} as const;

// A key on the request object itself, set only next to a valid secret.
const FOLLOWS_FILLS = Symbol('wharf.followsFills');

interface MarkedRequest extends IncomingMessage {
  [FOLLOWS_FILLS]?: true;
}

const FINGERPRINT = /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/;

/** A fresh secret for one process's threads (shared with them through workerData). */
export function newForwardSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Replaces whatever the client sent under these names with what this thread knows; followsFills:
 * this thread can send the blob of a running fill from its file (the hit thread's own choice,
 * never the client's).
 */
export function setForwardedClientHeaders(headers: Record<string, string | string[]>, client: ClientInfo, secret: string, followsFills = false): void {
  for (const name of Object.values(FORWARDED_CLIENT_HEADERS)) delete headers[name];
  headers[FORWARDED_CLIENT_HEADERS.secret] = secret;
  if (followsFills) headers[FORWARDED_CLIENT_HEADERS.followsFills] = '1';
  headers[FORWARDED_CLIENT_HEADERS.address] = client.address;
  if (client.secure) headers[FORWARDED_CLIENT_HEADERS.secure] = '1';
  if (client.certificate) {
    // A CN may hold any Unicode; a header value may not.
    headers[FORWARDED_CLIENT_HEADERS.subjectCN] = encodeURIComponent(client.certificate.subjectCN);
    headers[FORWARDED_CLIENT_HEADERS.fingerprint256] = client.certificate.fingerprint256;
  }
}

/** The internal listener's request listener: marks requests that carry the secret with their client. */
export function trustForwardedClients(secret: string, listener: RequestListener): RequestListener {
  const expected = Buffer.from(secret);
  return (req, res) => {
    const client = forwardedClient(req.headers, expected);
    if (client) {
      markForwardedClient(req, client);
      if (single(req.headers[FORWARDED_CLIENT_HEADERS.followsFills]) === '1') (req as MarkedRequest)[FOLLOWS_FILLS] = true;
    }
    listener(req, res);
  };
}

/** A hit thread handed this request over and can follow a running fill's file itself; false for any other request. */
export function followsFillsLocally(req: IncomingMessage): boolean {
  return (req as MarkedRequest)[FOLLOWS_FILLS] === true;
}

function forwardedClient(headers: IncomingHttpHeaders, expected: Buffer): ClientInfo | undefined {
  const offered = single(headers[FORWARDED_CLIENT_HEADERS.secret]);
  if (offered === undefined) return undefined;
  const given = Buffer.from(offered);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const address = single(headers[FORWARDED_CLIENT_HEADERS.address]);
  if (address === undefined || isIP(address) === 0) return undefined;
  const tls = single(headers[FORWARDED_CLIENT_HEADERS.secure]) === '1' ? { secure: true } : {};
  const cn = single(headers[FORWARDED_CLIENT_HEADERS.subjectCN]);
  const fingerprint256 = single(headers[FORWARDED_CLIENT_HEADERS.fingerprint256]);
  if (cn === undefined || fingerprint256 === undefined || !FINGERPRINT.test(fingerprint256)) return { address, ...tls };
  try {
    return { address, ...tls, certificate: { subjectCN: decodeURIComponent(cn), fingerprint256 } };
  } catch {
    return { address, ...tls };
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
