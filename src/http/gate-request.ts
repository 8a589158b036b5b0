// What the access gate reads of a Node request: its credentials, the client (clientInfo():
// the peer, or the client a hit thread handed the request over for, with its verified
// certificate), and the host and scheme it used (the default token realm is on them).
import type { IncomingMessage } from 'node:http';
import type { GateRequest } from '../auth/access-gate.ts';
import { clientInfo, type ClientInfo } from './client-info.ts';

/** client: clientInfo(req), when the caller has it already. */
export function gateRequest(req: IncomingMessage, client: ClientInfo = clientInfo(req)): GateRequest {
  return gateRequestOf(req.headers.authorization, req.headers.host, client);
}

/** The same from headers read off the wire by other means (fast-connections.ts). */
export function gateRequestOf(authorization: string | undefined, host: string | undefined, client: ClientInfo): GateRequest {
  return {
    authorization: authorization === undefined || authorization === '' ? undefined : authorization,
    address: client.address,
    certificate: client.certificate,
    host,
    secure: client.secure === true,
  };
}
