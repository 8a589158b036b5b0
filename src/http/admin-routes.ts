// The admin API, for operators and scripts while wharf serves: cache statistics and garbage
// collection with the server's own view of what is in use. Off unless admin.token is set or the
// access gate names admins; every request must bear that token or come from an admin.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Hono, MiddlewareHandler } from 'hono';
import { AdminUnauthorizedError } from '../errors.ts';
import { cacheStats, collectGarbage, type MaintenanceDeps } from '../cache/maintenance.ts';
import type { TopRepositories } from '../metrics/top-repositories.ts';
import type { WharfEnv } from './wharf-env.ts';
import type { AccessGate } from '../auth/access-gate.ts';
import { gateRequest } from './gate-request.ts';

export function addAdminRoutes(
  app: Hono<WharfEnv>,
  deps: { token: string | undefined; gate: AccessGate | undefined; maintenance: MaintenanceDeps; topRepositories: TopRepositories },
): void {
  if (deps.token === undefined && deps.gate === undefined) return;
  app.use('/admin/*', adminsOnly(deps.token, deps.gate));
  app.get('/admin/stats', async (c) => c.json({ ...(await cacheStats(deps.maintenance)), mostPulled: deps.topRepositories.top(10) }));
  app.post('/admin/gc', async (c) => c.json(await collectGarbage(deps.maintenance, { dryRun: c.req.query('dryRun') === 'true' })));
}

function adminsOnly(token: string | undefined, gate: AccessGate | undefined): MiddlewareHandler<WharfEnv> {
  const expected = token === undefined ? undefined : digest(token);
  return async (c, next) => {
    const offered = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
    // Compared as hashes: equal lengths for timingSafeEqual, and no timing hint about the token.
    if (expected !== undefined && offered !== undefined && timingSafeEqual(digest(offered), expected)) return next();
    if (gate === undefined) throw new AdminUnauthorizedError();
    const identity = await gate.identify(gateRequest(c.env.incoming)).catch(() => undefined);
    if (identity === undefined || !gate.isAdmin(identity)) throw identity?.kind === 'anonymous' || identity === undefined ? new AdminUnauthorizedError() : gate.refuseOperator(identity);
    c.set('identity', identity);
    await next();
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
