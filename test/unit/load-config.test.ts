import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  ConfigError,
  defaultConfigPath,
  describeConfig,
  envVarForKey,
  loadConfig,
  upstreamEnvPrefix,
  type Config,
} from '../../src/config/load-config.ts';
import { configSchema, ENV_OVERRIDABLE_KEYS, HASH_THREAD_MIN_CPUS } from '../../src/config/schema.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

const minimal = `
upstreams:
  - name: docker.io
    url: https://registry-1.docker.io/
    default: true
  - name: ghcr.io
    url: https://ghcr.io
`;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'wharf-config-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

async function load(yaml: string, env: Record<string, string | undefined> = {}): Promise<Config> {
  await write('wharf.yaml', yaml);
  return loadConfig({ path: 'wharf.yaml', env, cwd: dir });
}

async function problemsOf(promise: Promise<unknown>): Promise<readonly string[]> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  const { problems, message } = err as ConfigError;
  expect(message).toBe(problems.join('\n'));
  return problems;
}

describe('loadConfig: defaults and file choice', () => {
  it('fills every default and resolves dataDir against cwd', async () => {
    const config = await load(minimal);
    expect(config).toMatchObject({
      listen: '0.0.0.0:5000',
      dataDir: path.join(dir, 'data'),
      sendfile: true,
      logLevel: 'info',
      redis: { keyPrefix: 'wharf:' },
      cache: {
        tagTtlSeconds: 60,
        memoryManifests: 16_384,
        minFreeBytes: 2 ** 30,
        tagRetentionDays: 90,
        evictionGraceSeconds: 60,
        pinned: [],
        tagListMaxTags: 100_000,
        tagListMaxBytes: 16 * 2 ** 20,
        verifiedRangesOnly: false,
        fsync: true,
        hashThread: availableParallelism() >= HASH_THREAD_MIN_CPUS,
      },
      timeouts: { connectMs: 3000, headersMs: 5000, bodyIdleMs: 30000, manifestTotalMs: 10000, blobMinBytesPerSecond: 16384, blobRateWindowMs: 10000 },
      offline: false,
      resilience: { staleAfterMs: 1500, breaker: { failureThreshold: 5, openMs: 5000, maxOpenMs: 60000 } },
    });
    expect(config.redis.url).toBeUndefined();
    const timeouts = { connectMs: 3000, headersMs: 5000, bodyIdleMs: 30000, manifestTotalMs: 10000, blobMinBytesPerSecond: 16384, blobRateWindowMs: 10000 };
    const hosts = { redirectHosts: [], authRealmHosts: [], fallbackUrls: [], prefetch: false };
    expect(config.upstreams).toEqual([
      { name: 'docker.io', url: 'https://registry-1.docker.io', default: true, libraryPrefix: true, timeouts, ...hosts },
      { name: 'ghcr.io', url: 'https://ghcr.io', default: false, libraryPrefix: false, timeouts, ...hosts },
    ]);
  });

  it('decides libraryPrefix from the Docker Hub host unless set', async () => {
    const config = await load(`
upstreams:
  - { name: hub, url: "https://registry-1.docker.io" }
  - { name: docker.io, url: "http://127.0.0.1:5001", libraryPrefix: false }
  - { name: local, url: "http://127.0.0.1:5002", libraryPrefix: true }
`);
    expect(config.upstreams.map((u) => u.libraryPrefix)).toEqual([true, false, true]);
  });

  it('treats an empty file as empty config (and then asks for upstreams)', async () => {
    expect(await problemsOf(load(''))).toEqual([expect.stringMatching(/^wharf\.yaml: upstreams: /)]);
  });

  it('loads the shipped config/default.yaml when neither path nor WHARF_CONFIG is given', async () => {
    expect(defaultConfigPath()).toBe(path.join(root, 'config', 'default.yaml'));
    const config = await loadConfig({ env: {}, cwd: dir });
    expect(config.upstreams.map((u) => [u.name, u.url])).toEqual([
      ['docker.io', 'https://registry-1.docker.io'],
      ['ghcr.io', 'https://ghcr.io'],
      ['quay.io', 'https://quay.io'],
      ['registry.k8s.io', 'https://registry.k8s.io'],
      ['gcr.io', 'https://gcr.io'],
    ]);
    expect(config.upstreams.filter((u) => u.default).map((u) => u.name)).toEqual(['docker.io']);
    expect(config.redis.url).toBeUndefined();
    expect(config.dataDir).toBe(path.join(dir, 'data'));
  });

  it('default.yaml states the same values as the schema defaults', async () => {
    const shipped = configSchema.parse(parseYaml(await readFile(defaultConfigPath(), 'utf8')));
    const defaults = configSchema.parse({ upstreams: shipped.upstreams });
    expect(shipped).toEqual(defaults);
  });

  it('takes WHARF_CONFIG (relative to cwd), and opts.path over it', async () => {
    await write('a.yaml', `listen: 127.0.0.1:1111\n${minimal}`);
    await write('b.yaml', `listen: 127.0.0.1:2222\n${minimal}`);
    expect((await loadConfig({ env: { WHARF_CONFIG: 'a.yaml' }, cwd: dir })).listen).toBe('127.0.0.1:1111');
    expect((await loadConfig({ path: path.join(dir, 'b.yaml'), env: { WHARF_CONFIG: 'a.yaml' }, cwd: dir })).listen).toBe(
      '127.0.0.1:2222',
    );
  });

  it('reports a missing config file', async () => {
    expect(await problemsOf(loadConfig({ path: 'nope.yaml', env: {}, cwd: dir }))).toEqual([
      'nope.yaml: cannot read config file: ENOENT',
    ]);
  });
});

describe('shipped examples', () => {
  const examplesDir = path.join(root, 'config', 'examples');

  it('every config/examples/*.yaml is valid', async () => {
    const files = (await readdir(examplesDir)).filter((f) => f.endsWith('.yaml'));
    expect(files).toEqual(expect.arrayContaining(['dockerhub-auth.yaml', 'redis.yaml', 'local-mirror.yaml', 'air-gapped.yaml', 'secured.yaml']));
    for (const f of files) {
      const raw: unknown = parseYaml(await readFile(path.join(examplesDir, f), 'utf8'));
      const result = configSchema.safeParse(raw);
      expect(result.success, `${f}: ${result.error?.message}`).toBe(true);
      // Through the loader too; the environment stands in for secret files that only exist in deployment.
      const env: Record<string, string> = {};
      for (const u of (raw as { upstreams?: { name: string; passwordFile?: string }[] }).upstreams ?? []) {
        if (u.passwordFile !== undefined) env[`${upstreamEnvPrefix(u.name)}_PASSWORD`] = 'from-env';
      }
      const config = await loadConfig({ path: path.join(examplesDir, f), env, cwd: dir });
      expect(config.upstreams.length).toBeGreaterThan(0);
    }
  });

  it('dockerhub-auth.yaml reads its passwordFile', async () => {
    const text = await readFile(path.join(examplesDir, 'dockerhub-auth.yaml'), 'utf8');
    const secret = await write('token', 'dckr_pat_example\n');
    const config = await load(text.replace('/run/secrets/dockerhub-token', secret));
    const hub = config.upstreams.find((u) => u.name === 'docker.io');
    expect(hub).toMatchObject({ username: 'myuser', password: 'dckr_pat_example', passwordFile: secret, default: true });
  });

  it('redis.yaml sets redis.url', async () => {
    const config = await loadConfig({ path: path.join(examplesDir, 'redis.yaml'), env: {}, cwd: dir });
    expect(config.redis.url).toMatch(/^redis:\/\//);
  });

  it('client daemon.json is valid JSON with a mirror and the matching insecure registry', async () => {
    const daemon = JSON.parse(await readFile(path.join(examplesDir, 'clients', 'daemon.json'), 'utf8')) as Record<string, string[]>;
    expect(daemon['registry-mirrors']).toEqual(['http://wharf.example:5000']);
    expect(daemon['insecure-registries']).toEqual(['wharf.example:5000']);
  });
});

describe('environment overrides', () => {
  it('names each variable WHARF_ + the key path in UPPER_SNAKE case', () => {
    expect(ENV_OVERRIDABLE_KEYS.map(envVarForKey)).toEqual([
      'WHARF_LISTEN',
      'WHARF_THREADS',
      'WHARF_DATA_DIR',
      'WHARF_SENDFILE',
      'WHARF_LOG_LEVEL',
      'WHARF_REDIS_URL',
      'WHARF_REDIS_KEY_PREFIX',
      'WHARF_CLUSTER_ADVERTISE_URL',
      'WHARF_CLUSTER_REPLICA_NAME',
      'WHARF_CACHE_TAG_TTL_SECONDS',
      'WHARF_CACHE_MEMORY_MANIFESTS',
      'WHARF_CACHE_MAX_BYTES',
      'WHARF_CACHE_MIN_FREE_BYTES',
      'WHARF_TIMEOUTS_CONNECT_MS',
      'WHARF_TIMEOUTS_HEADERS_MS',
      'WHARF_TIMEOUTS_BODY_IDLE_MS',
      'WHARF_TIMEOUTS_MANIFEST_TOTAL_MS',
      'WHARF_TIMEOUTS_BLOB_MIN_BYTES_PER_SECOND',
      'WHARF_TIMEOUTS_BLOB_RATE_WINDOW_MS',
      'WHARF_CACHE_TAG_LIST_MAX_TAGS',
      'WHARF_CACHE_TAG_LIST_MAX_BYTES',
      'WHARF_CACHE_VERIFIED_RANGES_ONLY',
      'WHARF_CACHE_FSYNC',
      'WHARF_CACHE_HASH_THREAD',
      'WHARF_OFFLINE',
      'WHARF_RESILIENCE_STALE_AFTER_MS',
      'WHARF_ADMIN_TOKEN',
      'WHARF_TLS_LISTEN',
      'WHARF_TLS_CERT_FILE',
      'WHARF_TLS_KEY_FILE',
      'WHARF_TLS_CLIENT_CA_FILE',
      'WHARF_TLS_REQUIRE_CLIENT_CERT',
    ]);
    expect(upstreamEnvPrefix('docker.io')).toBe('WHARF_UPSTREAM_DOCKER_IO');
    expect(upstreamEnvPrefix('localhost:5001')).toBe('WHARF_UPSTREAM_LOCALHOST_5001');
  });

  it('converts true/false for boolean keys and refuses anything else', async () => {
    expect((await load(minimal, { WHARF_OFFLINE: 'true' })).offline).toBe(true);
    expect((await load(`offline: true\n${minimal}`, { WHARF_OFFLINE: 'false' })).offline).toBe(false);
    await expect(load(minimal, { WHARF_OFFLINE: 'yes' })).rejects.toThrow(/WHARF_OFFLINE: offline: expected true or false/);
    expect((await load(minimal, { WHARF_SENDFILE: 'false' })).sendfile).toBe(false);
  });

  it('reads sizes with units from the file and the environment, and refuses nonsense', async () => {
    const config = await load(`cache: { maxBytes: 50GiB, minFreeBytes: 500 MB }\n${minimal}`);
    expect(config.cache.maxBytes).toBe(50 * 2 ** 30);
    expect(config.cache.minFreeBytes).toBe(500e6);
    expect((await load(minimal, { WHARF_CACHE_MAX_BYTES: '2TB', WHARF_CACHE_MIN_FREE_BYTES: '0' })).cache).toMatchObject({ maxBytes: 2e12, minFreeBytes: 0 });
    const defaults = (await load(minimal)).cache;
    expect(defaults.maxBytes).toBeUndefined();
    expect(defaults).toMatchObject({ minFreeBytes: 2 ** 30, pinned: [] });
    await expect(load(`cache: { maxBytes: lots }\n${minimal}`)).rejects.toThrow(/cache\.maxBytes: expected a size such as 50GiB/);
  });

  it('takes per-upstream timeouts over the global ones', async () => {
    const config = await load('timeouts: { headersMs: 4000 }\nupstreams:\n  - { name: docker.io, url: http://127.0.0.1:1, timeouts: { headersMs: 900 } }\n');
    expect(config.upstreams[0]?.timeouts).toEqual({ connectMs: 3000, headersMs: 900, bodyIdleMs: 30000, manifestTotalMs: 10000, blobMinBytesPerSecond: 16384, blobRateWindowMs: 10000 });
  });

  it('wins over the file, converting numbers', async () => {
    const config = await load(`cache: { tagTtlSeconds: 10 }\nredis: { keyPrefix: "file:" }\n${minimal}`, {
      WHARF_CACHE_TAG_TTL_SECONDS: '300',
      WHARF_TIMEOUTS_CONNECT_MS: ' 250 ',
      WHARF_REDIS_URL: 'redis://127.0.0.1:6380/2',
      WHARF_DATA_DIR: 'cache-dir',
      WHARF_LISTEN: '127.0.0.1:0',
      WHARF_LOG_LEVEL: 'debug',
    });
    expect(config.cache.tagTtlSeconds).toBe(300);
    expect(config.timeouts.connectMs).toBe(250);
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6380/2', keyPrefix: 'file:' });
    expect(config.dataDir).toBe(path.join(dir, 'cache-dir'));
    expect(config.listen).toBe('127.0.0.1:0');
    expect(config.logLevel).toBe('debug');
  });

  it('ignores empty variables', async () => {
    const config = await load(minimal, { WHARF_REDIS_URL: '', WHARF_CACHE_TAG_TTL_SECONDS: '' });
    expect(config.redis.url).toBeUndefined();
    expect(config.cache.tagTtlSeconds).toBe(60);
  });

  it('rejects a non-numeric number, naming the variable', async () => {
    expect(await problemsOf(load(minimal, { WHARF_CACHE_TAG_TTL_SECONDS: 'soon' }))).toEqual([
      'WHARF_CACHE_TAG_TTL_SECONDS: cache.tagTtlSeconds: expected a number, got "soon"',
    ]);
  });

  it('blames the variable, not the file, when the schema rejects its value', async () => {
    const problems = await problemsOf(
      load(minimal, { WHARF_TIMEOUTS_CONNECT_MS: '-5', WHARF_REDIS_URL: 'http://redis:6379', WHARF_LOG_LEVEL: 'loud' }),
    );
    expect(problems).toHaveLength(3);
    expect(problems).toContainEqual(expect.stringMatching(/^WHARF_TIMEOUTS_CONNECT_MS: timeouts\.connectMs: /));
    expect(problems).toContainEqual('WHARF_REDIS_URL: redis.url: expected redis://host:port[/db] or rediss://...');
    expect(problems).toContainEqual(expect.stringMatching(/^WHARF_LOG_LEVEL: logLevel: /));
  });
});

describe('tls', () => {
  const tls = 'tls: { listen: 127.0.0.1:5443, certFile: certs/tls.crt, keyFile: certs/tls.key }\n';

  it('is off unless configured; its files are resolved against cwd, not read by the loader', async () => {
    expect((await load(minimal)).tls).toBeUndefined();
    const config = await load(`${tls}${minimal}`);
    expect(config.tls).toEqual({ listen: '127.0.0.1:5443', certFile: path.join(dir, 'certs/tls.crt'), keyFile: path.join(dir, 'certs/tls.key'), requireClientCert: false });
    expect(config.listen).toBe('0.0.0.0:5000');
    const mtls = await load(`tls: { listen: ":5443", certFile: /c, keyFile: /k, clientCaFile: ca.pem, requireClientCert: true }\n${minimal}`);
    expect(mtls.tls).toMatchObject({ listen: ':5443', clientCaFile: path.join(dir, 'ca.pem'), requireClientCert: true });
  });

  it('turns plain HTTP off with listen: off, only beside tls', async () => {
    expect((await load(`listen: off\n${tls}${minimal}`)).listen).toBe('off');
    expect((await load(`${tls}${minimal}`, { WHARF_LISTEN: 'off' })).listen).toBe('off');
    expect(await problemsOf(load(`listen: off\n${minimal}`))).toEqual(['wharf.yaml: listen: with listen: off, configure tls (wharf would listen nowhere)']);
    expect(await problemsOf(load(`listen: nowhere\n${minimal}`))).toEqual(['wharf.yaml: listen: expected host:port, e.g. 0.0.0.0:5000, or off']);
  });

  it('refuses what cannot work: one address for both, required certificates without a CA, missing files', async () => {
    expect(await problemsOf(load(`listen: 127.0.0.1:5443\n${tls}${minimal}`))).toEqual([
      'wharf.yaml: tls.listen: the HTTPS listener needs an address of its own (plain HTTP is on listen)',
    ]);
    expect(await problemsOf(load(`tls: { listen: ":5443", certFile: /c, keyFile: /k, requireClientCert: true }\n${minimal}`))).toEqual([
      'wharf.yaml: tls.requireClientCert: requireClientCert needs clientCaFile (the CAs client certificates are checked against)',
    ]);
    const problems = await problemsOf(load(`tls: { listen: ":5443", certFile: "" }\n${minimal}`));
    expect(problems).toContain('wharf.yaml: tls.certFile: expected a file path');
    expect(problems).toContainEqual(expect.stringMatching(/^wharf\.yaml: tls\.keyFile: /));
  });

  it('takes every key from the environment too', async () => {
    const config = await load(minimal, {
      WHARF_TLS_LISTEN: '0.0.0.0:443',
      WHARF_TLS_CERT_FILE: '/run/secrets/tls.crt',
      WHARF_TLS_KEY_FILE: '/run/secrets/tls.key',
      WHARF_TLS_CLIENT_CA_FILE: '/run/secrets/ca.crt',
      WHARF_TLS_REQUIRE_CLIENT_CERT: 'true',
    });
    expect(config.tls).toEqual({ listen: '0.0.0.0:443', certFile: '/run/secrets/tls.crt', keyFile: '/run/secrets/tls.key', clientCaFile: '/run/secrets/ca.crt', requireClientCert: true });
  });
});

describe('upstream credentials', () => {
  it('come from WHARF_UPSTREAM_<NAME>_USERNAME / _PASSWORD', async () => {
    const config = await load(minimal, {
      WHARF_UPSTREAM_GHCR_IO_USERNAME: 'octocat',
      WHARF_UPSTREAM_GHCR_IO_PASSWORD: 'ghp_secret',
    });
    expect(config.upstreams[1]).toMatchObject({ name: 'ghcr.io', username: 'octocat', password: 'ghp_secret' });
    expect(config.upstreams[0]?.password).toBeUndefined();
  });

  it('reads passwordFile relative to cwd, trimming the trailing newline', async () => {
    await write('hub-token', 'p@ss word\n');
    const config = await load(`
upstreams:
  - { name: docker.io, url: "https://registry-1.docker.io", username: me, passwordFile: hub-token }
`);
    expect(config.upstreams[0]).toMatchObject({ username: 'me', password: 'p@ss word', passwordFile: path.join(dir, 'hub-token') });
  });

  it('takes a credentialHelper (lifetime 3600 s by default, a relative path from cwd) and refuses it beside a password', async () => {
    const config = await load(`
upstreams:
  - { name: ecr, url: "https://123456789012.dkr.ecr.us-east-1.amazonaws.com", credentialHelper: { command: ecr-login } }
  - { name: own, url: "https://registry.example", credentialHelper: { command: ./bin/helper, lifetimeSeconds: 60, serverUrl: registry.example } }
`);
    expect(config.upstreams[0]?.credentialHelper).toEqual({ command: 'ecr-login', lifetimeSeconds: 3600 });
    expect(config.upstreams[1]?.credentialHelper).toEqual({ command: path.join(dir, 'bin/helper'), lifetimeSeconds: 60, serverUrl: 'registry.example' });
    const problems = await problemsOf(
      load(`upstreams:\n  - { name: ecr, url: "https://x.example", username: AWS, password: p, credentialHelper: { command: ecr-login } }\n`),
    );
    expect(problems).toEqual(['wharf.yaml: upstreams.0.credentialHelper: set credentialHelper or username/password/passwordFile, not both']);
  });

  it('lets the environment password win over passwordFile', async () => {
    const config = await load(
      `upstreams:\n  - { name: docker.io, url: "https://registry-1.docker.io", username: me, passwordFile: /does/not/exist }\n`,
      { WHARF_UPSTREAM_DOCKER_IO_PASSWORD: 'env-secret' },
    );
    expect(config.upstreams[0]).toMatchObject({ username: 'me', password: 'env-secret' });
    expect(config.upstreams[0]?.passwordFile).toBeUndefined();
  });

  it('reports an unreadable or empty passwordFile with its key', async () => {
    await write('empty', '\n');
    const problems = await problemsOf(
      load(`
upstreams:
  - { name: docker.io, url: "https://registry-1.docker.io", username: me, passwordFile: empty }
  - { name: ghcr.io, url: "https://ghcr.io", username: me, passwordFile: /nonexistent/wharf-secret }
`),
    );
    expect(problems).toEqual([
      `wharf.yaml: upstreams.0.passwordFile: ${path.join(dir, 'empty')} is empty`,
      'wharf.yaml: upstreams.1.passwordFile: cannot read /nonexistent/wharf-secret: ENOENT',
    ]);
  });

  it('rejects credentials for an upstream that is not configured, and a password without a username', async () => {
    const problems = await problemsOf(load(minimal, { WHARF_UPSTREAM_QUAY_IO_PASSWORD: 'x' }));
    expect(problems).toEqual([expect.stringMatching(/^WHARF_UPSTREAM_QUAY_IO_PASSWORD: no configured upstream .*DOCKER_IO, WHARF_UPSTREAM_GHCR_IO/)]);
    expect(await problemsOf(load(minimal, { WHARF_UPSTREAM_DOCKER_IO_PASSWORD: 'x' }))).toEqual([
      'wharf.yaml: upstreams.0.username: a password needs a username',
    ]);
  });
});

describe('validation errors name the key', () => {
  it('bad URL', async () => {
    expect(await problemsOf(load(`upstreams:\n  - { name: docker.io, url: "ftp://registry-1.docker.io" }\n`))).toEqual([
      'wharf.yaml: upstreams.0.url: expected an http(s) URL such as https://registry-1.docker.io',
    ]);
  });

  it('unknown keys, at any depth', async () => {
    const problems = await problemsOf(load(`cache: { tagTTL: 5 }\nlisten_port: 5000\n${minimal}`));
    expect(problems).toEqual(expect.arrayContaining(['wharf.yaml: cache.tagTTL: unknown key', 'wharf.yaml: listen_port: unknown key']));
    expect(problems).toHaveLength(2);
  });

  it('duplicate upstream names', async () => {
    expect(await problemsOf(load(`${minimal}  - { name: ghcr.io, url: "https://ghcr.example" }\n`))).toEqual([
      'wharf.yaml: upstreams.2.name: duplicate upstream name ghcr.io',
    ]);
  });

  it('two default upstreams', async () => {
    expect(await problemsOf(load(`${minimal}  - { name: quay.io, url: "https://quay.io", default: true }\n`))).toEqual([
      'wharf.yaml: upstreams: at most one upstream may be the default',
    ]);
  });

  it('lists every problem, one per line', async () => {
    const problems = await problemsOf(
      load(`listen: nowhere\nlogLevel: loud\nupstreams:\n  - { name: Docker.io, url: "https://x" }\n`, {
        WHARF_CACHE_MEMORY_MANIFESTS: 'many',
      }),
    );
    expect(problems).toEqual([
      'WHARF_CACHE_MEMORY_MANIFESTS: cache.memoryManifests: expected a number, got "many"',
      expect.stringMatching(/^wharf\.yaml: listen: expected host:port/),
      expect.stringMatching(/^wharf\.yaml: logLevel: /),
      expect.stringMatching(/^wharf\.yaml: upstreams\.0\.name: expected a lowercase registry host/),
    ]);
  });

  it('YAML syntax errors carry line and column', async () => {
    const problems = await problemsOf(load(`listen: 0.0.0.0:5000\nupstreams:\n  - name: docker.io\n    url: [https://x\n`));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatch(/^wharf\.yaml: line \d+, column \d+: \S/);
    const duplicate = await problemsOf(load(`listen: a:1\nlisten: b:2\n${minimal}`));
    expect(duplicate).toEqual(['wharf.yaml: line 2, column 1: Map keys must be unique']);
  });

  it('a top level that is not a mapping', async () => {
    expect(await problemsOf(load('- a\n- b\n'))).toEqual(['wharf.yaml: expected a mapping at the top level']);
  });
});

describe('the result', () => {
  it('is deeply frozen', async () => {
    const config = await load(minimal);
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { listen: string }).listen = 'x';
    }).toThrow(TypeError);
    expect(() => {
      (config.cache as { tagTtlSeconds: number }).tagTtlSeconds = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.upstreams as unknown[]).push({});
    }).toThrow(TypeError);
    expect(() => {
      (config.upstreams[0] as { url: string }).url = 'http://evil';
    }).toThrow(TypeError);
  });

  it('describeConfig hides passwords and URL credentials', async () => {
    const config = await load(minimal, {
      WHARF_UPSTREAM_DOCKER_IO_USERNAME: 'me',
      WHARF_UPSTREAM_DOCKER_IO_PASSWORD: 'hunter2',
      WHARF_REDIS_URL: 'redis://default:redispass@redis:6379/0',
    });
    const summary = describeConfig(config);
    const text = JSON.stringify(summary);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('redispass');
    expect(summary.upstreams[0]).toMatchObject({ username: 'me', password: '***' });
    expect(summary.upstreams[1]).not.toHaveProperty('password');
    expect(summary.redis.url).toBe('redis://default:***@redis:6379/0');
    expect(config.upstreams[0]?.password).toBe('hunter2');
  });
});

describe('offline without upstreams', () => {
  it('serves the common registry names, docker.io by default, and needs upstreams otherwise', async () => {
    const config = await load('offline: true\n');
    expect(config.upstreams.map((u) => u.name)).toEqual(['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io', 'gcr.io']);
    expect(config.upstreams.find((u) => u.default)?.name).toBe('docker.io');
    await expect(load('listen: 127.0.0.1:5000\n')).rejects.toThrow(/upstreams: configure at least one upstream \(or set offline: true\)/);
  });
});

describe('auth', () => {
  it('is off unless configured; its files are resolved against cwd, the signing key defaults under dataDir', async () => {
    expect((await load(minimal)).auth).toBeUndefined();
    const config = await load(
      `auth:\n  htpasswd: { path: users/htpasswd }\n  machines: { ci: { file: secrets/ci }, node: { sha256: ${'a'.repeat(64)} } }\n  rulesFile: rules.yaml\n  previousKeyFiles: [old.pem]\n${minimal}`,
    );
    expect(config.auth).toMatchObject({
      service: 'wharf',
      tokenTtlSeconds: 300,
      signingKeyFile: path.join(dir, 'data', 'auth', 'token-signing-key.pem'),
      previousKeyFiles: [path.join(dir, 'old.pem')],
      htpasswd: { path: path.join(dir, 'users/htpasswd'), groups: {} },
      machines: { ci: { file: path.join(dir, 'secrets/ci') }, node: { sha256: 'a'.repeat(64) } },
      rulesFile: path.join(dir, 'rules.yaml'),
    });
    const withRules = await load(`auth:\n  rules: [{ repositories: ["docker.io/**"], anonymous: true }]\n  signingKeyFile: k.pem\n${minimal}`);
    expect(withRules.auth?.rules).toEqual([{ repositories: ['docker.io/**'], anonymous: true }]);
    expect(withRules.auth?.signingKeyFile).toBe(path.join(dir, 'k.pem'));
  });

  it('refuses what cannot work: no rules, both rules and rulesFile, a machine token that is not a SHA-256', async () => {
    expect((await problemsOf(load(`auth: { htpasswd: { path: h } }\n${minimal}`))).join('\n')).toMatch(/auth\.rules: set rules \(or rulesFile\)/);
    expect((await problemsOf(load(`auth: { rules: [], rulesFile: r.yaml }\n${minimal}`))).join('\n')).toMatch(/set rules or rulesFile, not both/);
    expect((await problemsOf(load(`auth: { rules: [], machines: { ci: { sha256: nope } } }\n${minimal}`))).join('\n')).toMatch(/auth\.machines\.ci/);
    expect((await problemsOf(load(`auth: { rules: [{ repositories: [] }] }\n${minimal}`))).join('\n')).toMatch(/auth\.rules\.0\.repositories/);
  });

  it('takes a proxy filter per upstream', async () => {
    const config = await load('upstreams:\n  - { name: docker.io, url: https://registry-1.docker.io, repositories: { allow: ["library/**"], deny: ["library/evil"] } }\n');
    expect(config.upstreams[0]!.repositories).toEqual({ allow: ['library/**'], deny: ['library/evil'] });
  });
});

describe('redis sentinel', () => {
  it('takes sentinels with their master name or cluster nodes, and refuses what cannot work', async () => {
    const config = await load(`redis: { sentinels: ["127.0.0.1:26379", "[::1]:26380"], sentinelName: mymaster }\n${minimal}`);
    expect(config.redis).toMatchObject({ sentinels: ['127.0.0.1:26379', '[::1]:26380'], sentinelName: 'mymaster' });
    expect((await problemsOf(load(`redis: { sentinels: ["127.0.0.1:26379"] }\n${minimal}`))).join('\n')).toMatch(/set sentinels and sentinelName together/);
    expect((await problemsOf(load(`redis: { sentinelName: m }\n${minimal}`))).join('\n')).toMatch(/set sentinels and sentinelName together/);
    expect((await problemsOf(load(`redis: { sentinels: ["no-port"], sentinelName: m }\n${minimal}`))).join('\n')).toMatch(/redis\.sentinels\.0/);
    expect((await load(`redis: { cluster: ["127.0.0.1:7000", "127.0.0.1:7001"] }\n${minimal}`)).redis.cluster).toEqual(['127.0.0.1:7000', '127.0.0.1:7001']);
    expect((await problemsOf(load(`redis: { cluster: ["127.0.0.1:7000"], sentinels: ["127.0.0.1:26379"], sentinelName: m }\n${minimal}`))).join('\n')).toMatch(/set cluster or sentinels, not both/);
  });
});


describe('scale-out: blobs.s3 and cluster', () => {
  const s3 = `blobs:\n  s3: { endpoint: "http://127.0.0.1:9000/", bucket: wharf-blobs, forcePathStyle: true, accessKeyIdFile: keys/id, secretAccessKeyFile: keys/secret }\n`;
  const cluster = `redis: { url: "redis://127.0.0.1:6379" }\ncluster: { advertiseUrl: "http://10.0.0.5:5000/", secretFile: secrets/cluster }\n`;

  it('takes an S3 store and a cluster, resolving their files against the config', async () => {
    const config = await load(minimal + s3 + cluster);
    expect(config.blobs.s3).toMatchObject({
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      bucket: 'wharf-blobs',
      prefix: '',
      forcePathStyle: true,
      accessKeyIdFile: path.join(dir, 'keys/id'),
      secretAccessKeyFile: path.join(dir, 'keys/secret'),
      partSize: 8 * 2 ** 20,
    });
    expect(config.cluster).toEqual({ advertiseUrl: 'http://10.0.0.5:5000', secretFile: path.join(dir, 'secrets/cluster'), leaseMs: 15000 });
  });

  it('gives each replica its own address and name from the environment', async () => {
    const config = await load(minimal + cluster, { WHARF_CLUSTER_ADVERTISE_URL: 'http://wharf-2.wharf-headless:5000', WHARF_CLUSTER_REPLICA_NAME: 'wharf-2' });
    expect(config.cluster).toMatchObject({ advertiseUrl: 'http://wharf-2.wharf-headless:5000', replicaName: 'wharf-2' });
  });

  it('says what is wrong with a bad S3 or cluster block', async () => {
    expect(await problemsOf(load(`${minimal}cluster: { advertiseUrl: "http://10.0.0.5:5000", secretFile: s }\n`))).toEqual([
      'wharf.yaml: cluster: cluster needs redis (url, sentinels or cluster): the replicas meet there',
    ]);
    expect(
      await problemsOf(load(`${minimal}blobs:\n  s3: { bucket: Not_A_Bucket, prefix: "no-slash", accessKeyIdFile: id, partSize: 1024 }\n`)),
    ).toEqual([
      'wharf.yaml: blobs.s3.bucket: expected an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)',
      'wharf.yaml: blobs.s3.prefix: expected a key prefix ending in /, such as wharf/',
      'wharf.yaml: blobs.s3.partSize: S3 parts are at least 5 MiB',
      'wharf.yaml: blobs.s3.accessKeyIdFile: set accessKeyIdFile and secretAccessKeyFile together',
    ]);
    const bad = await problemsOf(load(`${minimal}redis: { url: "redis://127.0.0.1:6379" }\ncluster: { advertiseUrl: "ftp://x", secretFile: s, replicaName: "a b", leaseMs: 10 }\n`));
    expect(bad.map((p) => p.split(':')[1]!.trim())).toEqual(['cluster.advertiseUrl', 'cluster.replicaName', 'cluster.leaseMs']);
  });
});

describe('cache.tagFreshness', () => {
  it('takes rules in order and says which pattern is wrong', async () => {
    const config = await load(`${minimal}cache:\n  tagFreshness:\n    - { match: "**:v*", ttlSeconds: immutable }\n    - { match: "docker.io/library/**:latest", ttlSeconds: 0 }\n`);
    expect(config.cache.tagFreshness).toEqual([
      { match: '**:v*', ttlSeconds: 'immutable' },
      { match: 'docker.io/library/**:latest', ttlSeconds: 0 },
    ]);
    const problems = await problemsOf(load(`${minimal}cache:\n  tagFreshness:\n    - { match: "docker.io/library/alpine", ttlSeconds: 5 }\n    - { match: "**:latest", ttlSeconds: forever }\n`));
    expect(problems).toEqual([
      'wharf.yaml: cache.tagFreshness.0.match: invalid repository glob "docker.io/library/alpine": expected <repository glob>:<tag glob>, e.g. docker.io/library/**:v* or **:latest',
      'wharf.yaml: cache.tagFreshness.1.ttlSeconds: expected seconds (0 or more) or immutable',
    ]);
  });
});
