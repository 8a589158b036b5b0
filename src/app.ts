// createApp(deps): the Hono application. No I/O happens at import or construction.
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Logger } from 'pino';
import { RouteNotFoundError } from './errors.ts';
import { errorResponse } from './http/error-response.ts';
import { handleRegistryRequest, type RegistryServices } from './http/registry-handler.ts';
import type { Metrics } from './metrics/metrics.ts';

export interface AppDeps extends RegistryServices {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export function createApp(deps: AppDeps): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/metrics', async () => {
    const { registry } = deps.metrics;
    return new Response(await registry.metrics(), { headers: { 'Content-Type': registry.contentType } });
  });
  app.all('/v2', (c) => handleRegistryRequest(c, deps));
  app.all('/v2/*', (c) => handleRegistryRequest(c, deps));
  app.notFound((c) => errorResponse(new RouteNotFoundError(c.req.path), c.env.incoming.method ?? 'GET', deps.logger));
  app.onError((err, c) => errorResponse(err, c.env.incoming.method ?? 'GET', deps.logger));
  return app;
}
