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
import type { AccessControl } from './auth/open-access-gate.ts';
import { identifyCaller, observersOnly } from './http/access-middleware.ts';
import { serveToken } from './http/token-route.ts';
import { addPeerRoute } from './http/peer-route.ts';
import type { ClusterSecret } from './cluster/cluster-secret.ts';

export interface AppDeps extends RegistryServices {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly topRepositories: TopRepositories;
  readonly status: StatusSources;
  readonly maintenance: MaintenanceDeps;
  readonly adminToken: string | undefined;
  readonly observer: RequestObserver;
  /** The access gate and token service; undefined when wharf is open. */
  readonly access: AccessControl | undefined;
  /** Set in a cluster: other replicas read running fills from this one with it. */
  readonly cluster?: { readonly secret: ClusterSecret } | undefined;
}

/** The operator's endpoints that name repositories: only observers and admins read them. */
const OBSERVED_PATHS = ['/', '/status.json', '/metrics'];

export function createApp(deps: AppDeps): Hono<WharfEnv> {
  const app = new Hono<WharfEnv>();
  const observe = observeRequests(deps.observer, deps.files);
  app.use('/v2', observe);
  app.use('/v2/*', observe);
  const access = deps.access;
  const services = { ...deps, gate: access?.gate };
  if (access) {
    const identify = identifyCaller(access.gate);
    app.use('/v2', identify);
    app.use('/v2/*', identify);
    const tokens = access.tokens;
    if (tokens) {
      // Logged and counted like registry requests: logins and their failures belong in the access log.
      app.use('/token', observe);
      app.get('/token', (c) => serveToken(c, { gate: access.gate, tokens, router: deps.router }));
    }
    const observers = observersOnly(access.gate);
    for (const path of OBSERVED_PATHS) app.use(path, observers);
  }
  app.all('/v2', (c) => handleRegistryRequest(c, services));
  app.all('/v2/*', (c) => handleRegistryRequest(c, services));
  if (deps.cluster) addPeerRoute(app, { secret: deps.cluster.secret, blobs: deps.blobs, files: deps.files });
  addOpsRoutes(app, deps);
  // Admins are identities only where wharf authenticates (proxy filters alone authenticate nobody).
  const adminGate = access?.tokens ? access.gate : undefined;
  addAdminRoutes(app, { token: deps.adminToken, gate: adminGate, maintenance: deps.maintenance, topRepositories: deps.topRepositories });
  app.notFound((c) => errorResponse(new RouteNotFoundError(c.req.path), c.env.incoming.method ?? 'GET', deps.logger));
  app.onError((err, c) => errorResponse(err, c.env.incoming.method ?? 'GET', deps.logger));
  return app;
}
