// Builds the access gate and the token service from the config, for the main thread and each
// hit thread alike (one place, so a new identity source is added once). Undefined when the
// config has no auth block: wharf is then open, as it always was.
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { AccessGate } from './access-gate.ts';
import type { TokenService } from './token-service.ts';
import { AccessRules } from './access-rules.ts';
import { ProxyFilter } from './proxy-filter.ts';

export interface AccessControl {
  readonly gate: AccessGate;
  /** The token service; undefined when wharf authenticates nobody (proxy filters alone). */
  readonly tokens: TokenService | undefined;
  close(): void;
}

export async function openAccessGate(config: Config, logger: Logger, metrics: Metrics): Promise<AccessControl | undefined> {
  const proxyFilters = new Map(config.upstreams.flatMap((u) => (u.repositories ? [[u.name, new ProxyFilter(u.repositories)] as const] : [])));
  // Token signing, JWT and bcrypt code is loaded only for a wharf that authenticates.
  if (config.auth !== undefined) return (await import('./open-authenticated.ts')).openAuthenticated(config.auth, proxyFilters, logger, metrics);
  if (proxyFilters.size === 0) return undefined;
  // Proxy filters alone: nobody is authenticated (credentials meant for upstreams are ignored,
  // as before), everyone may pull what the filters admit.
  const gate = new AccessGate({
    authenticator: undefined,
    rules: { rules: new AccessRules([{ repositories: ['**'], anonymous: true }]) },
    proxyFilters,
    service: 'wharf',
    realm: undefined,
    admins: new AccessRules([]),
    observers: new AccessRules([{ repositories: ['**'], anonymous: true }]),
  });
  return { gate, tokens: undefined, close: () => undefined };
}
