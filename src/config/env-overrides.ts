// WHARF_* environment variables over the config file: one variable per scalar key (named from
// the key path) and credentials per upstream (named from the upstream). The environment wins.
import { configSchema, ENV_OVERRIDABLE_KEYS, SIZE_KEYS } from './schema.ts';

export type EnvOverridableKey = (typeof ENV_OVERRIDABLE_KEYS)[number];

/** The env var that overrides a key: redis.url -> WHARF_REDIS_URL, cache.tagTtlSeconds -> WHARF_CACHE_TAG_TTL_SECONDS. */
export function envVarForKey(key: EnvOverridableKey): string {
  const segments = key.split('.').map((s) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase());
  return `WHARF_${segments.join('_')}`;
}

/** The prefix of an upstream's credential env vars: docker.io -> WHARF_UPSTREAM_DOCKER_IO (+ _USERNAME / _PASSWORD). */
export function upstreamEnvPrefix(upstreamName: string): string {
  return `WHARF_UPSTREAM_${upstreamName.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

export type Json = Record<string, unknown>;

export function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// An empty variable (FOO= in a compose file) means "not set", the way shells and compose treat it.
export function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

// The kind of each overridable key, taken from the schema's defaults so the two cannot drift;
// a key without a default (redis.url) is a string.
function scalarKinds(): Map<string, 'number' | 'boolean' | 'string'> {
  // With a tls block, so that its keys with defaults (requireClientCert) have a kind too.
  const defaults: unknown = configSchema.parse({ upstreams: [{ name: 'x', url: 'http://x' }], tls: { listen: 'x:1', certFile: 'x', keyFile: 'x' } });
  const kinds = new Map<string, 'number' | 'boolean' | 'string'>();
  for (const key of ENV_OVERRIDABLE_KEYS) {
    let v: unknown = defaults;
    for (const seg of key.split('.')) v = isPlainObject(v) ? v[seg] : undefined;
    kinds.set(key, SIZE_KEYS.has(key) ? 'string' : typeof v === 'number' ? 'number' : typeof v === 'boolean' ? 'boolean' : 'string');
  }
  return kinds;
}

export function applyEnvOverrides(
  raw: Json,
  env: Record<string, string | undefined>,
  envSources: Map<string, string>,
  problems: string[],
): void {
  const kinds = scalarKinds();
  for (const key of ENV_OVERRIDABLE_KEYS) {
    const name = envVarForKey(key);
    const text = nonEmpty(env[name]);
    if (text === undefined) continue;
    let value: string | number | boolean = text;
    const kind = kinds.get(key);
    if (kind === 'number') {
      value = Number(text.trim());
      if (text.trim() === '' || !Number.isFinite(value)) {
        problems.push(`${name}: ${key}: expected a number, got ${JSON.stringify(text)}`);
        continue;
      }
    } else if (kind === 'boolean') {
      if (text !== 'true' && text !== 'false') {
        problems.push(`${name}: ${key}: expected true or false, got ${JSON.stringify(text)}`);
        continue;
      }
      value = text === 'true';
    }
    const segments = key.split('.');
    const leaf = segments.pop() as string;
    let target: Json = raw;
    let reachable = true;
    for (const seg of segments) {
      const next = target[seg];
      if (next === undefined || next === null) target[seg] = {};
      else if (!isPlainObject(next)) {
        // The file's own value is wrong; the schema reports it against the file.
        reachable = false;
        break;
      }
      target = target[seg] as Json;
    }
    if (!reachable) continue;
    target[leaf] = value;
    envSources.set(key, name);
  }
}

export function applyUpstreamCredentials(
  raw: Json,
  env: Record<string, string | undefined>,
  envSources: Map<string, string>,
  problems: string[],
): void {
  const upstreams = Array.isArray(raw.upstreams) ? (raw.upstreams as unknown[]) : [];
  const prefixes = upstreams.map((u) =>
    isPlainObject(u) && typeof u.name === 'string' ? upstreamEnvPrefix(u.name) : undefined,
  );
  for (const [name, rawValue] of Object.entries(env)) {
    const m = /^(WHARF_UPSTREAM_.+)_(USERNAME|PASSWORD)$/.exec(name);
    const value = nonEmpty(rawValue);
    if (!m || value === undefined) continue;
    const [, prefix, which] = m;
    const matches = prefixes.flatMap((p, i) => (p === prefix ? [i] : []));
    // A typo in a secret's name would otherwise mean silently pulling anonymously.
    if (matches.length === 0) {
      const known = [...new Set(prefixes.filter((p) => p !== undefined))].join(', ') || 'none';
      problems.push(`${name}: no configured upstream has the env prefix ${prefix} (configured: ${known})`);
      continue;
    }
    if (matches.length > 1) {
      problems.push(`${name}: ambiguous, upstreams ${matches.join(' and ')} share the env prefix ${prefix}`);
      continue;
    }
    const i = matches[0] as number;
    const upstream = upstreams[i] as Json;
    if (which === 'USERNAME') {
      upstream.username = value;
      envSources.set(`upstreams.${i}.username`, name);
    } else {
      // The environment wins over a passwordFile from the file.
      delete upstream.passwordFile;
      upstream.password = value;
      envSources.set(`upstreams.${i}.password`, name);
    }
  }
}

