// The Node request listener of every wharf HTTP server: the manifest fast path first, then the
// Hono application for everything it leaves. Headers every answer carries are set here.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import type { ManifestFastPath } from './manifest-fast-path.ts';
import type { WharfEnv } from './wharf-env.ts';

export function registryRequestListener(app: Hono<WharfEnv>, fastPath: ManifestFastPath): RequestListener {
  const hono = getRequestListener(app.fetch);
  return (req: IncomingMessage, res: ServerResponse) => {
    // Everything wharf serves shares one origin with its status page: no answer (a manifest, a
    // blob, an error) may be sniffed into HTML or script, whatever an upstream sent.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (!fastPath.answer(req, res)) void hono(req, res);
  };
}
