// Middleware for every request: a request id (the client's X-Request-Id if sane, else a new
// one, echoed back), then, when the response is done or abandoned, one access log line and the
// request metrics. Blob bodies are written straight to the socket, so the outcome is read off
// the Node response rather than a Response object.
import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.ts';
import type { TopRepositories } from '../metrics/top-repositories.ts';
import type { FileSender } from './file-sender.ts';
import type { WharfEnv } from './wharf-env.ts';
import { CACHE_HEADER } from './registry-headers.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface ObserveDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly topRepositories: Pick<TopRepositories, 'record'>;
  readonly files: Pick<FileSender, 'bytesSentPastNode'>;
}

export function observeRequests(deps: ObserveDeps): MiddlewareHandler<WharfEnv> {
  const { logger, metrics, topRepositories, files } = deps;
  return async (c, next) => {
    const started = performance.now();
    const res = c.env.outgoing;
    const socket = res.socket;
    const bytesBefore = socket?.bytesWritten ?? 0;
    const offered = c.req.header('x-request-id');
    const reqId = offered && REQUEST_ID.test(offered) ? offered : randomUUID();
    res.setHeader('X-Request-Id', reqId);
    res.once('close', () => {
      if (c.get('forwarded')) return;
      const kind = c.get('requestKind') ?? 'other';
      const upstream = c.get('upstreamName');
      const status = res.statusCode;
      const cache = res.getHeader(CACHE_HEADER);
      const result = status >= 400 ? 'error' : typeof cache === 'string' ? cache : 'none';
      const bytes = (socket?.bytesWritten ?? bytesBefore) - bytesBefore + files.bytesSentPastNode(res);
      const seconds = (performance.now() - started) / 1000;
      metrics.requests.inc({ kind, result, upstream: upstream ?? 'none' });
      metrics.requestDuration.observe({ kind }, seconds);
      metrics.servedBytes.inc({ kind, result }, bytes);
      const method = c.env.incoming.method ?? 'GET';
      if (kind === 'manifest' && method === 'GET' && status === 200) topRepositories.record(`${upstream}/${c.get('repository')}`);
      logger.info(
        {
          reqId,
          method,
          url: c.req.path + (c.req.url.includes('?') ? c.req.url.slice(c.req.url.indexOf('?')) : ''),
          status,
          cache: typeof cache === 'string' ? cache : undefined,
          bytes,
          ms: Math.round(seconds * 10_000) / 10,
          upstream,
          completed: res.writableFinished,
          userAgent: c.req.header('user-agent'),
        },
        'request',
      );
    });
    await next();
  };
}
