// createApp(deps): the Hono application. No I/O happens at import or construction.
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { RouteNotFoundError } from './errors.ts';
import { errorResponse } from './http/error-response.ts';
import { handleRegistryRequest, type RegistryServices } from './http/registry-handler.ts';
import { observeRequests } from './http/observe-requests.ts';
import { addOpsRoutes } from './http/ops-routes.ts';
import { addAdminRoutes } from './http/admin-routes.ts';
import type { MaintenanceDeps } from './cache/maintenance.ts';
import type { StatusSources } from './http/status-report.ts';
import type { WharfEnv } from './http/wharf-env.ts';
import type { Metrics } from './metrics/metrics.ts';
import type { TopRepositories } from './metrics/top-repositories.ts';
import type { RequestObserver } from './http/request-observer.ts';

export interface AppDeps extends RegistryServices {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly topRepositories: TopRepositories;
  readonly status: StatusSources;
  readonly maintenance: MaintenanceDeps;
  readonly adminToken: string | undefined;
  readonly observer: RequestObserver;
}

export function createApp(deps: AppDeps): Hono<WharfEnv> {
  const app = new Hono<WharfEnv>();
  const observe = observeRequests(deps.observer, deps.files);
  app.use('/v2', observe);
  app.use('/v2/*', observe);
  app.all('/v2', (c) => handleRegistryRequest(c, deps));
  app.all('/v2/*', (c) => handleRegistryRequest(c, deps));
  addOpsRoutes(app, deps);
  addAdminRoutes(app, { token: deps.adminToken, maintenance: deps.maintenance, topRepositories: deps.topRepositories });
  app.notFound((c) => errorResponse(new RouteNotFoundError(c.req.path), c.env.incoming.method ?? 'GET', deps.logger));
  app.onError((err, c) => errorResponse(err, c.env.incoming.method ?? 'GET', deps.logger));
  return app;
}
