// The systems measured side by side, each started fresh with an empty cache in front of the
// same simulated WAN link: wharf (embedded store), wharf (Redis), wharf over HTTPS only, the
// reference registry in proxy mode (Debian's docker-registry), nginx proxy_cache configured
// for registries, and bare node:http as the ceiling of a Node server for the manifest figures.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request, type Dispatcher } from 'undici';
import { hash } from '@node-rs/bcrypt';
import { stringify } from 'yaml';
import { createTestCa } from '../test/support/test-ca.ts';
import { freePort } from '../test/support/free-port.ts';
import { makeTempDir, type TempDir } from '../test/support/temp-dir.ts';
import { startRedisServer, type RedisServer } from '../test/support/redis-server.ts';
import { startBenchS3, type BenchS3 } from './s3-blobs.ts';
import { stopProcess } from '../test/support/stop-process.ts';
import { WHARF_ENTRY, wharfShebang } from '../test/support/wharf-entry.ts';

export { WHARF_ENTRY };
const { nodeFlags: WHARF_NODE_FLAGS, env: WHARF_NODE_ENV } = wharfShebang();


export interface System {
  readonly name: string;
  /** http://127.0.0.1:PORT, or https:// */
  readonly url: string;
  /** For https: the CA that issued the system's certificate, for the load tools to trust. */
  readonly caFile?: string;
  /** What the bench's own requests go through (trusting caFile, adding `authorization`). */
  readonly dispatcher: Dispatcher;
  /** For a system with auth on: the Authorization a request for this path carries (a token from its /token). */
  readonly authorizationFor?: (path: string) => string | undefined;
  /** user:password for skopeo (--src-creds), which fetches its own token. */
  readonly creds?: string;
  /** Only these sections make sense for the system (node-bare answers manifests, nothing else). */
  readonly sections?: ReadonlySet<string>;
  /** The process and its children, for RSS and CPU. */
  pids(): number[];
  /** For a system with a shared blob store (wharf-s3): resolves once the blob is in it. */
  readonly sharedBlobLanded?: (digest: string) => Promise<void>;
  stop(): Promise<void>;
}

/**
 * wharf-2t, wharf-redis-2t: the same with `threads: 2` (a hit thread beside the main one);
 * wharf-tls, wharf-tls-2t: HTTPS only (`listen: off`), with a certificate from a CA of the bench's.
 * wharf-auth, wharf-auth-2t: auth on (an htpasswd user, one rule); every request bears a token
 * wharf issued, as clients' requests do after the token dance.
 * wharf-s3: blobs shared on a local S3 server (bench/s3-blobs.ts) behind the disk, as replicas keep them.
 * wharf-log, wharf-log-2t: the access log on as shipped (logLevel info), stdout to a file, as a
 * journal or a container runtime's log file takes it.
 * node-bare: node:http answering every GET with a 1.4 KB manifest-sized body, nothing else: what
 * a Node server costs per request at the least (manifest section only).
 */
export type SystemKind =
  | 'wharf'
  | 'wharf-2t'
  | 'wharf-log'
  | 'wharf-log-2t'
  | 'wharf-tls'
  | 'wharf-tls-2t'
  | 'wharf-auth'
  | 'wharf-auth-2t'
  | 'wharf-redis'
  | 'wharf-redis-2t'
  | 'wharf-s3'
  | 'registry'
  | 'nginx'
  | 'node-bare';
type WharfKind = Extract<SystemKind, `wharf${string}`>;

export async function startSystem(kind: SystemKind, upstreamUrl: string): Promise<System> {
  const dir = await makeTempDir(`wharf-bench-${kind}-`);
  try {
    if (kind.startsWith('wharf')) return await startWharfSystem(kind as WharfKind, upstreamUrl, dir);
    if (kind === 'registry') return await startRegistryProxy(upstreamUrl, dir);
    if (kind === 'node-bare') return await startBareNode(dir);
    return await startNginx(upstreamUrl, dir);
  } catch (err) {
    await dir.cleanup();
    throw err;
  }
}

async function startWharfSystem(kind: WharfKind, upstreamUrl: string, dir: TempDir): Promise<System> {
  const redis: RedisServer | undefined = kind.startsWith('wharf-redis') ? await startRedisServer() : undefined;
  let s3: BenchS3 | undefined;
  const stopEngines = async () => {
    await redis?.stop();
    await s3?.stop();
  };
  try {
    s3 = kind === 'wharf-s3' ? await startBenchS3(dir.path) : undefined;
    const shared = s3;
    const system = await startWharfProcess(kind, upstreamUrl, dir, { redisUrl: redis?.url, blobs: shared?.config });
    return {
      ...system,
      ...(shared ? { sharedBlobLanded: (digest: string) => shared.landed(digest) } : {}),
      async stop() {
        await system.stop();
        await stopEngines();
      },
    };
  } catch (err) {
    await stopEngines();
    throw err;
  }
}

async function startWharfProcess(kind: WharfKind, upstreamUrl: string, dir: TempDir, engines: { redisUrl?: string; blobs?: object }): Promise<System> {
  const config = join(dir.path, 'wharf.yaml');
  const port = await freePort();
  const tls = kind.startsWith('wharf-tls') ? await benchCertificate(dir) : undefined;
  const auth = kind.startsWith('wharf-auth') ? await benchAuth(dir) : undefined;
  const logged = kind.startsWith('wharf-log');
  await writeFile(
    config,
    stringify({
      // Over TLS, every request of the bench goes through it: no plain listener to fall back on.
      ...(tls ? { listen: 'off', tls: { listen: `127.0.0.1:${port}`, certFile: tls.certFile, keyFile: tls.keyFile } } : { listen: `127.0.0.1:${port}` }),
      dataDir: join(dir.path, 'data'),
      // No access log, as nginx (access_log off) and the registry (accesslog disabled) run here;
      // wharf-log keeps the shipped default (info: a line per request).
      ...(logged ? {} : { logLevel: 'warn' }),
      threads: kind.endsWith('-2t') ? 2 : 1,
      ...(engines.redisUrl ? { redis: { url: engines.redisUrl } } : {}),
      ...(engines.blobs ? { blobs: engines.blobs } : {}),
      cache: { minFreeBytes: 0 },
      upstreams: [{ name: 'docker.io', url: upstreamUrl, default: true, libraryPrefix: false }],
      ...(auth ? { auth: auth.config } : {}),
    }),
  );
  // The command itself, so wharf runs with the Node settings its first line gives it.
  // BENCH_WHARF_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`): flags for wharf's Node,
  // which NODE_OPTIONS may not carry; the entry's own first-line flags are given too.
  const nodeArgs = process.env.BENCH_WHARF_NODE_ARGS?.split(' ').filter(Boolean);
  const [command, args] = nodeArgs ? [process.execPath, [...WHARF_NODE_FLAGS, ...nodeArgs, WHARF_ENTRY]] : [WHARF_ENTRY, []];
  const started = await startProcess(kind, command, [...args, 'serve', '--config', config], `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, dir, {
    ...(tls ? { caFile: tls.caFile } : {}),
    ...(logged ? { stdoutFile: join(dir.path, 'stdout.log') } : {}),
    ...(nodeArgs ? { env: WHARF_NODE_ENV } : {}),
  });
  return auth ? withToken(started, auth.creds) : started;
}

/** One htpasswd user allowed everything, tokens valid for the whole run. */
async function benchAuth(dir: TempDir): Promise<{ config: object; creds: string }> {
  const htpasswd = join(dir.path, 'htpasswd');
  await writeFile(htpasswd, `bench:${await hash('bench-password', 10)}\n`);
  return {
    config: { htpasswd: { path: htpasswd }, rules: [{ repositories: ['**'], users: ['bench'] }], tokenTtlSeconds: 86_400, signingKeyFile: join(dir.path, 'token-key.pem') },
    creds: 'bench:bench-password',
  };
}

/**
 * Fetches tokens as clients do, one per repository (the scope of the challenge), and has every
 * bench request carry the one for the repository in its path.
 */
async function withToken(system: System, creds: string): Promise<System> {
  const tokens = new Map<string, string>();
  for (const repo of ['medium', 'herd', 'fill', 'large', 'tiny']) {
    const res = await request(`${system.url}/token?service=wharf&scope=repository:bench/${repo}:pull`, {
      dispatcher: system.dispatcher,
      headers: { authorization: `Basic ${Buffer.from(creds).toString('base64')}` },
    });
    if (res.statusCode !== 200) throw new Error(`${system.name}: /token answered ${res.statusCode}`);
    tokens.set(`bench/${repo}`, `Bearer ${((await res.body.json()) as { token: string }).token}`);
  }
  const authorizationFor = (path: string) => tokens.get(/^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(new URL(path, 'http://x').pathname)?.[1] ?? '');
  const dispatcher = system.dispatcher.compose((dispatch) => (opts, handler) => {
    const authorization = authorizationFor(opts.path);
    return dispatch(authorization ? { ...opts, headers: { ...(opts.headers as Record<string, string>), authorization } } : opts, handler);
  });
  return { ...system, dispatcher, authorizationFor, creds };
}

/** A server certificate for 127.0.0.1 from a CA made for this run. */
async function benchCertificate(dir: TempDir): Promise<{ certFile: string; keyFile: string; caFile: string }> {
  const ca = await createTestCa(dir.path, 'bench-ca');
  const server = await ca.issue('localhost', { usage: 'server' });
  return { certFile: server.certPath, keyFile: server.keyPath, caFile: ca.certPath };
}

async function startRegistryProxy(upstreamUrl: string, dir: TempDir): Promise<System> {
  const port = await freePort();
  const config = join(dir.path, 'registry.yml');
  await writeFile(
    config,
    stringify({
      version: 0.1,
      log: { level: 'error', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(dir.path, 'data') }, delete: { enabled: true } },
      http: { addr: `127.0.0.1:${port}`, secret: 'wharf-bench' },
      proxy: { remoteurl: upstreamUrl },
    }),
  );
  return startProcess('registry', '/usr/bin/docker-registry', ['serve', config], `http://127.0.0.1:${port}`, dir);
}

async function startNginx(upstreamUrl: string, dir: TempDir): Promise<System> {
  const port = await freePort();
  const upstream = new URL(upstreamUrl).host;
  for (const d of ['cache', 'tmp', 'logs']) await mkdir(join(dir.path, d), { recursive: true });
  const d = dir.path;
  // The policy of shared/bench/proxy-nginx.sh: blobs cached by digest with a cache lock (one
  // upstream fetch per digest), manifests by digest forever, by tag for 30 s.
  const conf = `
user root;
worker_processes 2;
daemon off;
pid ${d}/nginx.pid;
error_log ${d}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${d}/tmp/client;
  proxy_temp_path ${d}/tmp/proxy;
  fastcgi_temp_path ${d}/tmp/fastcgi;
  uwsgi_temp_path ${d}/tmp/uwsgi;
  scgi_temp_path ${d}/tmp/scgi;
  proxy_cache_path ${d}/cache levels=1:2 keys_zone=registry:64m max_size=50g inactive=30d use_temp_path=off;
  upstream origin { server ${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_read_timeout 300s;
    proxy_cache registry;
    proxy_cache_lock on;
    proxy_cache_lock_timeout 10m;
    proxy_cache_lock_age 10m;
    proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
    proxy_ignore_headers Cache-Control Expires Set-Cookie Vary;
    location ~ "^/v2/.+/blobs/(?<dg>sha256:[0-9a-f]{64})$" { proxy_pass http://origin; proxy_cache_key $dg; proxy_cache_valid 200 30d; }
    location = /v2/ { default_type application/json; add_header Docker-Distribution-API-Version registry/2.0 always; return 200 '{}'; }
    location ~ "^/v2/.+/manifests/sha256:[0-9a-f]{64}$" { proxy_pass http://origin; proxy_cache_key $uri; proxy_cache_valid 200 30d; }
    location ~ "^/v2/.+/manifests/[^/]+$" { proxy_pass http://origin; proxy_cache_key $uri$http_accept; proxy_cache_valid 200 30s; }
    location / { proxy_pass http://origin; proxy_cache off; }
  }
}
`;
  await writeFile(join(d, 'nginx.conf'), conf);
  return startProcess('nginx', '/usr/sbin/nginx', ['-p', `${d}/`, '-e', `${d}/logs/error.log`, '-c', `${d}/nginx.conf`], `http://127.0.0.1:${port}`, dir);
}

/** The smallest Node server that answers like a cached manifest: one fixed body, no routing. */
async function startBareNode(dir: TempDir): Promise<System> {
  const port = await freePort();
  const script = `
const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', pad: 'x'.repeat(1300) }));
require('node:http').createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': body.length, 'docker-content-digest': 'sha256:' + '0'.repeat(64) });
  res.end(body);
}).listen(${port}, '127.0.0.1');
`;
  const system = await startProcess('node-bare', process.execPath, ['-e', script], `http://127.0.0.1:${port}`, dir);
  return { ...system, sections: new Set(['manifest']) };
}

/** Runs a command until it answers /v2/ at url; stop() ends it and removes dir (bench/scale.ts starts wharf on a data dir of its own with it). */
export async function startProcess(name: string, command: string, args: string[], url: string, dir: TempDir, opts: { caFile?: string; stdoutFile?: string; env?: Record<string, string> } = {}): Promise<System> {
  const { caFile } = opts;
  const stdout = opts.stdoutFile === undefined ? 'ignore' : openSync(opts.stdoutFile, 'a');
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', stdout, 'pipe'], env: { ...process.env, ...opts.env } });
  if (typeof stdout === 'number') closeSync(stdout); // the child has its own copy
  let log = '';
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err)); // not installed: said below, not thrown from an event
  child.stderr?.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-4000)));
  const dispatcher = new Agent(caFile ? { connect: { ca: readFileSync(caFile, 'utf8') } } : {});
  const answers = () =>
    request(`${url}/v2/`, { dispatcher }).then(
      async (r) => (await r.body.dump(), r.statusCode < 500),
      () => false,
    );
  const deadline = Date.now() + 15_000;
  while (!(await answers())) {
    if (spawnError || child.exitCode !== null || Date.now() > deadline) {
      await dispatcher.close();
      throw new Error(`${name} did not start: ${spawnError?.message ?? log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name,
    url,
    ...(caFile ? { caFile } : {}),
    dispatcher,
    pids: () => (child.pid === undefined ? [] : [child.pid, ...descendants(child.pid)]),
    async stop() {
      await dispatcher.close();
      await stopProcess(child);
      await dir.cleanup();
    },
  };
}

/** Child processes (nginx workers) by walking /proc. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry), ...descendants(Number(entry)));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
