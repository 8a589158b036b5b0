// GET /token: wharf's Docker token service (distribution's token.md), the flow every registry
// client already speaks. The caller is authenticated as on any request (Basic for htpasswd users
// and `docker login`, a client certificate, a machine token, or anonymous by network); each
// requested scope is cut to what the access rules grant it, which is not an error (a partial
// grant, as the spec says); the answer is a short-lived signed token.
import type { Context } from 'hono';
import { UnauthorizedError, type AccessGate } from '../auth/access-gate.ts';
import { parseScopes, type ResourceAccess } from '../auth/scope.ts';
import type { TokenService } from '../auth/token-service.ts';
import type { Identity } from '../auth/identity.ts';
import type { UpstreamRouter, ConfiguredUpstream } from '../proxy/upstream-router.ts';
import { gateRequest } from './gate-request.ts';
import type { WharfEnv } from './wharf-env.ts';

export interface TokenRouteDeps {
  readonly gate: AccessGate;
  readonly tokens: TokenService;
  readonly router: UpstreamRouter<Pick<ConfiguredUpstream, 'name' | 'libraryPrefix'>>;
}

export async function serveToken(c: Context<WharfEnv>, deps: TokenRouteDeps): Promise<Response> {
  const req = gateRequest(c.env.incoming);
  // A wrong password is a 401 here; docker login reports it as such.
  const identity = await deps.gate.identify(req);
  c.set('identity', identity);
  // A token is not a credential here: one that bought another would live for ever, and removing
  // a user or changing a password would revoke nothing.
  if (identity.tokenAccess !== undefined) {
    throw new UnauthorizedError('log in with your credentials: a token cannot be exchanged for another', { 'WWW-Authenticate': 'Basic realm="wharf", charset="UTF-8"' });
  }
  const url = new URL(c.req.url);
  const scopes = parseScopes(url.searchParams.getAll('scope'));
  const issued = await deps.tokens.issue(identity, url.searchParams.get('service') ?? undefined, scopes, (scope, who) => grant(deps, scope, who));
  return c.json(issued, 200, { 'Cache-Control': 'no-store' });
}

function grant(deps: TokenRouteDeps, scope: ResourceAccess, identity: Identity): readonly string[] {
  if (scope.type !== 'repository' || !scope.actions.includes('pull')) return [];
  let route;
  try {
    route = deps.router.route(scope.name, undefined);
  } catch {
    return []; // a name wharf cannot route is granted nothing
  }
  return deps.gate.mayPull(identity, { upstream: route.upstream.name, repository: route.repository, asked: scope.name }) ? ['pull'] : [];
}
