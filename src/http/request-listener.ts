// The Node request listener of every wharf HTTP server: the manifest fast path first, then the
// Hono application for everything it leaves. Headers every answer carries are set here.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Hono } from 'hono';
import type { ManifestFastPath } from './manifest-fast-path.ts';
import { NO_SNIFF_HEADERS } from './registry-headers.ts';
import type { WharfEnv } from './wharf-env.ts';

export function registryRequestListener(app: Hono<WharfEnv>, fastPath: ManifestFastPath): RequestListener {
  const hono = getRequestListener(keepAlreadySentOnHead(app));
  return (req: IncomingMessage, res: ServerResponse) => {
    // The fast path's answers carry NO_SNIFF_HEADERS themselves (a header set here first would
    // cost every one of them a merge in writeHead); everything else gets it here.
    if (fastPath.answer(req, res)) return;
    res.setHeader('X-Content-Type-Options', NO_SNIFF_HEADERS['X-Content-Type-Options']);
    void hono(req, res);
  };
}

// Hono answers every HEAD with `new Response(null, <what the GET route returned>)`, whatever the
// routes (a HEAD route does not avoid it). A route that wrote its answer to the Node response
// itself (a forward to the main thread, a blob sent with sendfile) returns RESPONSE_ALREADY_SENT;
// the copy keeps its marker header, but @hono/node-server honours the marker only on a response
// it has not cached, so it would write the head a second time (ERR_HTTP_HEADERS_SENT) and destroy
// the connection with every request pipelined on it. The original marker goes back instead. GET
// and the rest pass untouched, on @hono/node-server's fast path.
const ALREADY_SENT_HEADER = [...RESPONSE_ALREADY_SENT.headers.keys()][0]!;

function keepAlreadySentOnHead(app: Hono<WharfEnv>): Parameters<typeof getRequestListener>[0] {
  return (request, env) => {
    const answer = app.fetch(request, env as HttpBindings);
    if (request.method !== 'HEAD') return answer;
    return Promise.resolve(answer).then((res) => (res.headers.has(ALREADY_SENT_HEADER) ? RESPONSE_ALREADY_SENT : res));
  };
}
