// An upstream that lies on purpose: a real HTTP server on 127.0.0.1 whose every answer is chosen
// by the test (status, headers, body, a slow drip). It records what it was asked, with the
// Authorization header, so a test can tell exactly what wharf sent where.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface HostileRequest {
  readonly method: string;
  /** Path with query. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly authorization: string | undefined;
}

export interface HostileAnswer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
  readonly body?: Buffer | string;
  /** Send the body in pieces of this many bytes, one every dripMs. */
  readonly dripMs?: number;
  readonly dripBytes?: number;
}

export type HostileHandler = (req: HostileRequest, self: HostileUpstream) => HostileAnswer | undefined;

export interface HostileUpstream {
  readonly url: string;
  readonly port: number;
  /** host:port */
  readonly host: string;
  readonly requests: HostileRequest[];
  /** Replaces the answers; /v2/ answers 200 unless the handler says otherwise. */
  handle(handler: HostileHandler): void;
  stop(): Promise<void>;
}

export async function startHostileUpstream(handler: HostileHandler = () => undefined): Promise<HostileUpstream> {
  let current = handler;
  const requests: HostileRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const seen: HostileRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, authorization: req.headers.authorization };
    requests.push(seen);
    req.resume();
    const answer = current(seen, self) ?? (seen.path === '/v2/' ? { status: 200, body: '{}', headers: { 'content-type': 'application/json' } } : { status: 404, body: '{"errors":[{"code":"NAME_UNKNOWN"}]}' });
    const body = answer.body === undefined ? Buffer.alloc(0) : Buffer.from(answer.body);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(answer.headers ?? {})) if (v !== undefined) headers[k] = v;
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-length' || h.toLowerCase() === 'transfer-encoding')) {
      headers['content-length'] = String(body.length);
    }
    try {
      res.writeHead(answer.status, headers);
    } catch {
      // A header value Node itself refuses to send: the test asked for something unsendable.
      res.socket?.destroy();
      return;
    }
    if (seen.method === 'HEAD') return void res.end();
    if (!answer.dripMs) return void res.end(body);
    let offset = 0;
    const step = answer.dripBytes ?? 1;
    const drip = () => {
      if (res.destroyed) return;
      res.write(body.subarray(offset, offset + step));
      offset += step;
      if (offset >= body.length) return void res.end();
      const t = setTimeout(() => {
        timers.delete(t);
        drip();
      }, answer.dripMs);
      timers.add(t);
    };
    drip();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Keep-alive connections wharf holds open must not keep stop() waiting.
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const self: HostileUpstream = {
    url: `http://127.0.0.1:${port}`,
    port,
    host: `127.0.0.1:${port}`,
    requests,
    handle(next) {
      current = next;
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return self;
}

/** A JSON body with the headers a registry sends for a manifest. */
export function manifestAnswer(body: Buffer | string, contentType: string, extra: Record<string, string> = {}): HostileAnswer {
  return { status: 200, body, headers: { 'content-type': contentType, ...extra } };
}
