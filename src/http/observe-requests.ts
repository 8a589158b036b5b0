// Middleware for every request: a request id (the client's X-Request-Id if sane, else a new
// one, echoed back), then, when the response is done or abandoned, the RequestObserver's
// metrics and access log line. Blob bodies are written straight to the socket, so the outcome
// is read off the Node response rather than a Response object.
import type { MiddlewareHandler } from 'hono';
import { clientInfo } from './client-info.ts';
import type { FileSender } from './file-sender.ts';
import type { RequestObserver } from './request-observer.ts';
import type { WharfEnv } from './wharf-env.ts';
import { CACHE_HEADER } from './registry-headers.ts';
import { handedOverBytes } from './fill-handover.ts';

export function observeRequests(observer: RequestObserver, files: Pick<FileSender, 'bytesSentPastNode'>): MiddlewareHandler<WharfEnv> {
  return async (c, next) => {
    const started = performance.now();
    const res = c.env.outgoing;
    const socket = res.socket;
    const bytesBefore = socket?.bytesWritten ?? 0;
    const reqId = observer.requestId(c.req.header('x-request-id'));
    // Now: once the connection is gone, its peer address is too.
    const client = clientInfo(c.env.incoming);
    res.setHeader('X-Request-Id', reqId);
    res.once('close', () => {
      if (c.get('forwarded')) return;
      const cache = res.getHeader(CACHE_HEADER);
      observer.record({
        reqId,
        method: c.env.incoming.method ?? 'GET',
        url: c.env.incoming.url ?? c.req.path,
        status: res.statusCode,
        kind: c.get('requestKind') ?? 'other',
        cache: typeof cache === 'string' ? cache : undefined,
        upstream: c.get('upstreamName'),
        repository: c.get('repository'),
        // A fill handed over to a hit thread: it sent the blob, this socket carried only progress.
        bytes: handedOverBytes(res) ?? (socket?.bytesWritten ?? bytesBefore) - bytesBefore + files.bytesSentPastNode(res),
        seconds: (performance.now() - started) / 1000,
        completed: res.writableFinished,
        userAgent: c.req.header('user-agent'),
        identity: c.get('identity'),
        client,
      });
    });
    await next();
  };
}
