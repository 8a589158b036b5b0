// Builds the access gate and the token service from the config, for the main thread and each
// hit thread alike (one place, so a new identity source is added once). Undefined when the
// config has no auth block: wharf is then open, as it always was.
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { AccessGate } from './access-gate.ts';
import { AccessRules } from './access-rules.ts';
import { AccessRulesSource } from './access-rules-source.ts';
import { Authenticator } from './authenticator.ts';
import type { AuthOutcomeListener } from './auth-outcome.ts';
import { HtpasswdUsers } from './htpasswd.ts';
import { ProxyFilter } from './proxy-filter.ts';
import { StaticTokens } from './static-tokens.ts';
import { TokenKeys } from './token-keys.ts';
import { TokenService } from './token-service.ts';

export interface AccessControl {
  readonly gate: AccessGate;
  /** The token service; undefined when wharf authenticates nobody (proxy filters alone). */
  readonly tokens: TokenService | undefined;
  close(): void;
}

type AuthConfig = NonNullable<Config['auth']>;

export async function openAccessGate(config: Config, logger: Logger, metrics: Metrics): Promise<AccessControl | undefined> {
  const proxyFilters = new Map(config.upstreams.flatMap((u) => (u.repositories ? [[u.name, new ProxyFilter(u.repositories)] as const] : [])));
  if (config.auth !== undefined) return openAuthenticated(config.auth, proxyFilters, logger, metrics);
  if (proxyFilters.size === 0) return undefined;
  // Proxy filters alone: nobody is authenticated (credentials meant for upstreams are ignored,
  // as before), everyone may pull what the filters admit.
  const gate = new AccessGate({
    authenticator: undefined,
    rules: AccessRulesSource.fixed(new AccessRules([{ repositories: ['**'], anonymous: true }])),
    proxyFilters,
    service: 'wharf',
    realm: undefined,
    admins: new AccessRules([]),
    observers: new AccessRules([{ repositories: ['**'], anonymous: true }]),
  });
  return { gate, tokens: undefined, close: () => undefined };
}

async function openAuthenticated(auth: AuthConfig, proxyFilters: Map<string, ProxyFilter>, logger: Logger, metrics: Metrics): Promise<AccessControl> {
  const onOutcome = countOutcomes(metrics);
  const htpasswd = auth.htpasswd
    ? await HtpasswdUsers.open(
        { path: auth.htpasswd.path, groups: auth.htpasswd.groups },
        {
          onReload: (users) => logger.info({ file: auth.htpasswd!.path, users }, 'htpasswd reloaded'),
          onReloadError: (err) => logger.error({ err: err.message }, 'htpasswd not reloaded; the users loaded before stay'),
        },
      )
    : undefined;
  const machines = Object.keys(auth.machines).length > 0 ? await StaticTokens.load({ machines: auth.machines }) : undefined;
  const keys = await TokenKeys.load({ signingKeyFile: auth.signingKeyFile!, algorithm: auth.signingAlgorithm, previousKeyFiles: auth.previousKeyFiles });
  if (keys.generated) logger.warn({ file: auth.signingKeyFile }, 'generated a new token signing key');
  const tokens = new TokenService({ issuer: auth.service, service: auth.service, ttlSeconds: auth.tokenTtlSeconds }, keys);
  const rules = await AccessRulesSource.open({
    inline: auth.rules,
    file: auth.rulesFile,
    onOutcome,
    onReload: (count) => logger.info({ file: auth.rulesFile, rules: count }, 'access rules reloaded'),
    onReloadError: (err) => logger.error({ err: err.message }, 'access rules not reloaded; the rules in force stay'),
  });
  const role = (subjects: AuthConfig['admins']) => new AccessRules([{ repositories: ['**'], ...subjects }]);
  const gate = new AccessGate({
    authenticator: new Authenticator({ htpasswd, tokens, machines, onOutcome }),
    rules,
    proxyFilters,
    service: auth.service,
    realm: auth.realm,
    admins: role(auth.admins),
    observers: role(auth.observers),
    onRepeat: (kind) => onOutcome('ok', kind),
  });
  return {
    gate,
    tokens,
    close() {
      htpasswd?.close();
      rules.close();
    },
  };
}

/** Counts outcomes into wharf_auth_total through label-bound children: it runs on every request. */
function countOutcomes(metrics: Metrics): AuthOutcomeListener {
  const children = new Map<string, { inc(): void }>();
  return (result, kind) => {
    const key = `${result} ${kind}`;
    let child = children.get(key);
    if (child === undefined) children.set(key, (child = metrics.auth.labels({ result, kind })));
    child.inc();
  };
}
