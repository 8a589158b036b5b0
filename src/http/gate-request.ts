// What the access gate reads of a Node request: its credentials, the client's address and
// verified certificate, and the host and scheme it used (the default token realm is on them).
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { GateRequest } from '../auth/access-gate.ts';

export type ClientOf = (req: IncomingMessage) => Pick<GateRequest, 'address' | 'certificate'>;

/** The socket's own view: the client is the peer, its certificate the one TLS verified. */
export const directClient: ClientOf = (req) => {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.encrypted && socket.authorized && typeof socket.getPeerCertificate === 'function') {
    const cert = socket.getPeerCertificate();
    if (cert && cert.fingerprint256) {
      const cn = cert.subject?.CN;
      return { address: req.socket.remoteAddress ?? '', certificate: { subjectCN: Array.isArray(cn) ? cn[0] : cn, fingerprint256: cert.fingerprint256 } };
    }
  }
  return { address: req.socket.remoteAddress ?? '', certificate: undefined };
};

export function gateRequest(req: IncomingMessage, clientOf: ClientOf = directClient): GateRequest {
  const authorization = req.headers.authorization;
  return {
    authorization: authorization === undefined || authorization === '' ? undefined : authorization,
    ...clientOf(req),
    host: req.headers.host,
    secure: (req.socket as Partial<TLSSocket>).encrypted === true,
  };
}
