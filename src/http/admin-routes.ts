// The admin API, for operators and scripts while wharf serves: cache statistics and garbage
// collection with the server's own view of what is in use. Off unless admin.token is set; every
// request must bear that token.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Hono, MiddlewareHandler } from 'hono';
import { AdminUnauthorizedError } from '../errors.ts';
import { cacheStats, collectGarbage, type MaintenanceDeps } from '../cache/maintenance.ts';
import type { TopRepositories } from '../metrics/top-repositories.ts';
import type { WharfEnv } from './wharf-env.ts';

export function addAdminRoutes(app: Hono<WharfEnv>, deps: { token: string | undefined; maintenance: MaintenanceDeps; topRepositories: TopRepositories }): void {
  if (deps.token === undefined) return;
  app.use('/admin/*', bearerToken(deps.token));
  app.get('/admin/stats', async (c) => c.json({ ...(await cacheStats(deps.maintenance)), mostPulled: deps.topRepositories.top(10) }));
  app.post('/admin/gc', async (c) => c.json(await collectGarbage(deps.maintenance, { dryRun: c.req.query('dryRun') === 'true' })));
}

function bearerToken(token: string): MiddlewareHandler<WharfEnv> {
  const expected = digest(token);
  return async (c, next) => {
    const offered = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
    // Compared as hashes: equal lengths for timingSafeEqual, and no timing hint about the token.
    if (offered === undefined || !timingSafeEqual(digest(offered), expected)) {
      throw new AdminUnauthorizedError();
    }
    await next();
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
