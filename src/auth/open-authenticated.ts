// The access gate of a wharf that authenticates (config auth): htpasswd users, machine tokens,
// the token service with its signing keys, and the rules. Loaded by open-access-gate.ts only
// when auth is configured.
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { AccessGate } from './access-gate.ts';
import { AccessRules } from './access-rules.ts';
import { AccessRulesSource } from './access-rules-source.ts';
import { Authenticator } from './authenticator.ts';
import type { AuthOutcomeListener } from './auth-outcome.ts';
import { HtpasswdUsers } from './htpasswd.ts';
import type { AccessControl } from './open-access-gate.ts';
import type { ProxyFilter } from './proxy-filter.ts';
import { StaticTokens } from './static-tokens.ts';
import { TokenKeys } from './token-keys.ts';
import { TokenService } from './token-service.ts';

type AuthConfig = NonNullable<Config['auth']>;

export async function openAuthenticated(auth: AuthConfig, proxyFilters: Map<string, ProxyFilter>, logger: Logger, metrics: Metrics): Promise<AccessControl> {
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
