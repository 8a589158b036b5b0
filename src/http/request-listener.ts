// The Node request listener of every wharf HTTP server: the manifest fast path first, then the
// Hono application for everything it leaves.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import type { ManifestFastPath } from './manifest-fast-path.ts';
import type { WharfEnv } from './wharf-env.ts';

export function registryRequestListener(app: Hono<WharfEnv>, fastPath: ManifestFastPath): RequestListener {
  const hono = getRequestListener(app.fetch);
  return (req: IncomingMessage, res: ServerResponse) => {
    if (!fastPath.answer(req, res)) void hono(req, res);
  };
}
