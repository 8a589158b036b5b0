// An HTTP server on 127.0.0.1:0 that records every request it gets (method, path with query,
// headers) before its handler answers, so a test can assert what wharf sent to which host.
// Stand-ins name themselves by the host wharf is told to use for them ("127.0.0.1:PORT" or
// "localhost:PORT": two names for loopback that wharf's policies treat as two hosts).
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  /** The stand-in that received it (its label, e.g. "registry", "cdn", "realm"). */
  readonly server: string;
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
}

export type StandinHandler = (req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest) => void;

export interface RecordingServer {
  readonly label: string;
  readonly port: number;
  /** The origin wharf is given for this server, on the host name chosen at start. */
  readonly origin: string;
  /** host:port as wharf's config lists it (redirectHosts, authRealmHosts). */
  readonly host: string;
  readonly requests: RecordedRequest[];
  stop(): Promise<void>;
}

export async function startRecordingServer(label: string, hostName: '127.0.0.1' | 'localhost', handler: StandinHandler, log: RecordedRequest[]): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://standin');
    const recorded: RecordedRequest = { server: label, method: req.method ?? 'GET', url: req.url ?? '/', path: u.pathname, query: u.searchParams, headers: req.headers };
    requests.push(recorded);
    log.push(recorded);
    try {
      handler(req, res, recorded);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  // Always bound to 127.0.0.1 (localhost resolves there in /etc/hosts): tests stay on loopback.
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    label,
    port,
    origin: `http://${hostName}:${port}`,
    host: `${hostName}:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The user:password of a Basic Authorization header, if it is one. */
export function basicCredentials(headers: IncomingHttpHeaders): { username: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(headers.authorization ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? undefined : { username: text.slice(0, colon), password: text.slice(colon + 1) };
}
