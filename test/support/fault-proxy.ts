// A real HTTP proxy in front of a real registry with fault switches: corrupt blob bytes, or
// answer every request with a status. Counts what passes through. Loopback only.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultProxy {
  readonly url: string;
  /** Flip one byte in the middle of every blob body. */
  corruptBlobs: boolean;
  /** Pass blob bodies on slowly: `bytes` every `everyMs` (a slow upstream for one download). */
  dripBlobs: { bytes: number; everyMs: number } | undefined;
  /** Answer every request with this status instead of forwarding. */
  failWith: number | undefined;
  /** Headers added to every response, forwarded or failed (e.g. Docker Hub's RateLimit-Remaining, a Retry-After). */
  addHeaders: Record<string, string>;
  readonly requests: Array<{ method: string; path: string }>;
  stop(): Promise<void>;
}

export async function startFaultProxy(targetUrl: string): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  const state: FaultProxy = {
    url: '',
    corruptBlobs: false,
    dripBlobs: undefined,
    failWith: undefined,
    addHeaders: {},
    requests: [],
    stop: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    state.requests.push({ method: req.method ?? 'GET', path: req.url ?? '' });
    if (state.failWith !== undefined) {
      res.writeHead(state.failWith, { 'content-type': 'application/json', ...state.addHeaders });
      res.end('{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}');
      return;
    }
    const upstreamReq = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, { ...upstreamRes.headers, ...state.addHeaders });
        const corrupt = state.corruptBlobs && req.method === 'GET' && (req.url ?? '').includes('/blobs/sha256:');
        const length = Number(upstreamRes.headers['content-length'] ?? 0);
        const drip = req.method === 'GET' && (req.url ?? '').includes('/blobs/sha256:') ? state.dripBlobs : undefined;
        let pending = Buffer.alloc(0);
        let ended = false;
        const timer = drip
          ? setInterval(() => {
              const next = pending.subarray(0, drip.bytes);
              pending = pending.subarray(next.length);
              if (next.length > 0) res.write(next);
              if (ended && pending.length === 0) {
                clearInterval(timer);
                res.end();
              }
            }, drip.everyMs)
          : undefined;
        res.once('close', () => clearInterval(timer));
        let seen = 0;
        upstreamRes.on('data', (chunk: Buffer) => {
          const middle = Math.floor(length / 2);
          if (corrupt && middle >= seen && middle < seen + chunk.length) {
            chunk = Buffer.from(chunk);
            chunk[middle - seen] = chunk[middle - seen]! ^ 0xff;
          }
          seen += chunk.length;
          if (drip) pending = Buffer.concat([pending, chunk]);
          else res.write(chunk);
        });
        upstreamRes.on('end', () => {
          ended = true;
          if (!drip) res.end();
        });
      },
    );
    upstreamReq.on('error', () => res.destroy());
    req.pipe(upstreamReq);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return state;
}
