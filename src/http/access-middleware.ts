// The access gate as Hono middleware: who asks, once per request, before any route runs; and
// the guard of the operator's endpoints (the status page and /status.json name repositories,
// /metrics too), which only the configured observers and admins may read.
import type { MiddlewareHandler } from 'hono';
import type { AccessGate } from '../auth/access-gate.ts';
import { gateRequest } from './gate-request.ts';
import type { WharfEnv } from './wharf-env.ts';

export function identifyCaller(gate: AccessGate): MiddlewareHandler<WharfEnv> {
  return async (c, next) => {
    const req = gateRequest(c.env.incoming);
    c.set('gateRequest', req);
    c.set('identity', await gate.identify(req));
    await next();
  };
}

export function observersOnly(gate: AccessGate): MiddlewareHandler<WharfEnv> {
  return async (c, next) => {
    const identity = await gate.identify(gateRequest(c.env.incoming));
    c.set('identity', identity);
    if (!gate.mayObserve(identity)) throw gate.refuseOperator(identity);
    await next();
  };
}
