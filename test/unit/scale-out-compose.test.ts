// docker-compose.scale-out.yml checked offline (no image is pulled): three wharf replicas, each
// advertising its own service name and keeping its own volume, the same secrets on all three,
// the nginx in front listing exactly those three, every file the compose file names present in
// the repo, and config/examples/scale-out/wharf.yaml loading with wharf's own loader in the
// environment each replica gets (the image's ENV, then the service's). Each check is also fed
// a broken copy, so it is seen to fail.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig, type Config } from '../../src/config/load-config.ts';
import { imageEnv } from '../support/k8s-wiring-checks.ts';
import { DOCKERFILE, REPO_ROOT } from '../support/render-kubernetes.ts';

type Plain = Record<string, any>; // parsed YAML

const COMPOSE_FILE = path.join(REPO_ROOT, 'docker-compose.scale-out.yml');
const WHARF_PORT = 5000;

/** The compose file as compose reads it: YAML with merge keys (<<: *wharf). */
const parseCompose = (text: string): Plain => parseYaml(text, { merge: true }) as Plain;

/** The services built from this repo's image: the wharf replicas. */
const wharfServices = (compose: Plain): [string, Plain][] => Object.entries(compose.services as Plain).filter(([, s]) => s.image === 'wharf:local');

/** "host:container[:mode]" bind mounts of a service (host paths start with . or /). */
function bindMounts(service: Plain): { host: string; target: string }[] {
  return ((service.volumes ?? []) as unknown[])
    .filter((v): v is string => typeof v === 'string' && /^[./]/.test(v))
    .map((v) => {
      const [host, target] = v.split(':') as [string, string];
      return { host: path.resolve(REPO_ROOT, host), target };
    });
}

const namedVolume = (service: Plain, target: string): string | undefined =>
  ((service.volumes ?? []) as unknown[]).filter((v): v is string => typeof v === 'string' && !/^[./]/.test(v)).find((v) => v.split(':')[1] === target)?.split(':')[0];

const secretNames = (service: Plain): string[] => ((service.secrets ?? []) as (string | Plain)[]).map((s) => (typeof s === 'string' ? s : String(s.source))).sort();

/** The servers of nginx.conf's upstream that its proxy_pass names. */
function nginxUpstream(conf: string): string[] | undefined {
  const text = conf.replace(/#.*$/gm, '');
  const pass = /proxy_pass\s+http:\/\/([\w.-]+)\s*;/.exec(text)?.[1];
  if (pass === undefined) return undefined;
  const block = new RegExp(`upstream\\s+${pass.replace(/[.]/g, '\\.')}\\s*\\{([^}]*)\\}`).exec(text)?.[1];
  return block === undefined ? undefined : [...block.matchAll(/^\s*server\s+(\S+?)(?:\s[^;]*)?;/gm)].map((m) => m[1] as string);
}

/** Everything wrong with the compose file's replicas, secrets, load balancer and files; empty means fine. */
function composeProblems(compose: Plain, nginxConf: string): string[] {
  const problems: string[] = [];
  const replicas = wharfServices(compose);
  if (replicas.length !== 3) problems.push(`expected 3 wharf services, found ${replicas.length}`);
  const seen = { url: new Map<string, string>(), name: new Map<string, string>(), volume: new Map<string, string>() };
  const once = (kind: keyof typeof seen, value: string, service: string, what: string) => {
    const other = seen[kind].get(value);
    if (other !== undefined) problems.push(`${service}: ${what} ${value} is also ${other}'s`);
    seen[kind].set(value, service);
  };
  const firstSecrets = replicas[0] && secretNames(replicas[0][1]);
  for (const [name, s] of replicas) {
    const env = (s.environment ?? {}) as Plain;
    const url = env.WHARF_CLUSTER_ADVERTISE_URL;
    if (url !== `http://${name}:${WHARF_PORT}`) problems.push(`${name}: WHARF_CLUSTER_ADVERTISE_URL ${String(url)} is not http://${name}:${WHARF_PORT}`);
    if (typeof url === 'string') once('url', url, name, 'advertise URL');
    if (typeof env.WHARF_CLUSTER_REPLICA_NAME !== 'string') problems.push(`${name}: WHARF_CLUSTER_REPLICA_NAME is not set`);
    else once('name', env.WHARF_CLUSTER_REPLICA_NAME, name, 'replica name');
    const volume = namedVolume(s, '/var/lib/wharf');
    if (volume === undefined) problems.push(`${name}: no named volume on /var/lib/wharf`);
    else {
      once('volume', volume, name, 'volume');
      if (!(volume in ((compose.volumes ?? {}) as Plain))) problems.push(`${name}: volume ${volume} is not declared under volumes`);
    }
    if (JSON.stringify(secretNames(s)) !== JSON.stringify(firstSecrets)) problems.push(`${name}: secrets ${secretNames(s).join(',')} differ from ${replicas[0]![0]}'s ${firstSecrets!.join(',')}`);
  }
  for (const [name, s] of Object.entries(compose.services as Plain)) {
    for (const secret of secretNames(s)) if (!((compose.secrets ?? {}) as Plain)[secret]) problems.push(`${name}: secret ${secret} is not declared under secrets`);
    for (const m of bindMounts(s)) if (!existsSync(m.host)) problems.push(`${name}: ${path.relative(REPO_ROOT, m.host)} is not in the repo`);
  }
  for (const [name, s] of Object.entries((compose.secrets ?? {}) as Plain)) {
    if (typeof s.file !== 'string') problems.push(`secret ${name} has no file`);
    else if (!existsSync(path.resolve(REPO_ROOT, s.file))) problems.push(`secret ${name}: ${s.file} is not in the repo`);
  }
  const lbs = Object.entries(compose.services as Plain).filter(([, s]) => ((s.ports ?? []) as unknown[]).some((p) => String(p) === `${WHARF_PORT}:${WHARF_PORT}`));
  if (lbs.length !== 1 || wharfServices(compose).some(([n]) => n === lbs[0]?.[0])) problems.push(`expected one load balancer publishing ${WHARF_PORT}, found ${lbs.map(([n]) => n).join(', ') || 'none'}`);
  const lb = lbs[0]?.[1];
  if (lb !== undefined && !bindMounts(lb).some((m) => m.target === '/etc/nginx/nginx.conf' && m.host === path.join(REPO_ROOT, 'config/examples/scale-out/nginx.conf'))) {
    problems.push('the load balancer does not mount config/examples/scale-out/nginx.conf');
  }
  const servers = nginxUpstream(nginxConf);
  const expected = replicas.map(([n]) => `${n}:${WHARF_PORT}`).sort();
  if (servers === undefined) problems.push('nginx.conf: proxy_pass names no upstream block');
  else if (JSON.stringify([...servers].sort()) !== JSON.stringify(expected)) problems.push(`nginx.conf: upstream servers ${servers.join(' ')}, expected ${expected.join(' ')}`);
  return problems;
}

/** A replica's config as it starts: the bind-mounted WHARF_CONFIG loaded in the image's ENV plus the service's. */
async function replicaConfig(service: Plain): Promise<Config> {
  const env: Record<string, string> = { ...(await imageEnv(DOCKERFILE)), ...((service.environment ?? {}) as Record<string, string>) };
  const file = bindMounts(service).find((m) => m.target === env.WHARF_CONFIG);
  if (file === undefined) throw new Error(`WHARF_CONFIG ${env.WHARF_CONFIG} is no bind-mounted file`);
  return loadConfig({ path: file.host, env, cwd: REPO_ROOT });
}

/** Files the config names that are not secrets the service has (compose mounts them at /run/secrets/<name>). */
function unmountedFiles(config: Config, service: Plain): string[] {
  const files = [config.cluster?.secretFile, config.blobs.s3?.accessKeyIdFile, config.blobs.s3?.secretAccessKeyFile].filter((f): f is string => f !== undefined);
  const mounted = new Set(secretNames(service).map((s) => `/run/secrets/${s}`));
  return files.filter((f) => !mounted.has(f));
}

let text: string;
let compose: Plain;
let nginxConf: string;
beforeAll(async () => {
  text = await readFile(COMPOSE_FILE, 'utf8');
  compose = parseCompose(text);
  nginxConf = await readFile(path.join(REPO_ROOT, 'config/examples/scale-out/nginx.conf'), 'utf8');
});

describe('docker-compose.scale-out.yml', () => {
  it('has three wharf replicas with their own advertise URL, name and volume, the same secrets, nginx in front, every file present', () => {
    expect(wharfServices(compose).map(([n]) => n)).toEqual(['wharf-1', 'wharf-2', 'wharf-3']);
    expect(composeProblems(compose, nginxConf)).toEqual([]);
    expect(secretNames(compose.services['wharf-1'])).toEqual(['cluster-secret', 's3-access-key-id', 's3-secret-access-key']);
  });

  it.each(['wharf-1', 'wharf-2', 'wharf-3'])("%s: wharf.yaml loads with the replica's environment, on Redis and MinIO, every named file a secret it has", async (name) => {
    const service = compose.services[name] as Plain;
    const config = await replicaConfig(service);
    expect(config.cluster).toMatchObject({ advertiseUrl: `http://${name}:5000`, replicaName: name, secretFile: '/run/secrets/cluster-secret' });
    expect(config.redis.url).toBe('redis://redis:6379/0');
    expect(config.blobs.s3).toMatchObject({ endpoint: 'http://minio:9000', bucket: 'wharf', forcePathStyle: true });
    expect(config.listen).toBe('0.0.0.0:5000');
    expect(config.dataDir).toBe('/var/lib/wharf');
    expect(unmountedFiles(config, service)).toEqual([]);
  });

  it('the bucket wharf.yaml names is the one minio-init creates, with the key pair MinIO starts with', async () => {
    const config = await replicaConfig(compose.services['wharf-1']);
    expect(String(compose.services['minio-init'].command)).toContain(`mc mb --ignore-existing s3/${config.blobs.s3!.bucket}`);
    expect(compose.services.minio.environment).toEqual({ MINIO_ROOT_USER_FILE: 's3-access-key-id', MINIO_ROOT_PASSWORD_FILE: 's3-secret-access-key' });
  });

  it('ships placeholder secrets that say to change them, the cluster secret long enough for wharf', async () => {
    for (const [name, s] of Object.entries(compose.secrets as Plain)) {
      const value = (await readFile(path.resolve(REPO_ROOT, s.file), 'utf8')).trim();
      expect(value, name).toMatch(/^change-me-\S+$/);
    }
    expect((await readFile(path.resolve(REPO_ROOT, compose.secrets['cluster-secret'].file), 'utf8')).trim().length).toBeGreaterThanOrEqual(32);
    expect(await readFile(path.join(REPO_ROOT, 'config/examples/scale-out/README.md'), 'utf8')).toMatch(/replace each/);
  });

  it.skipIf(!existsSync('/usr/bin/docker-compose'))('docker-compose (v1) accepts the file', async () => {
    await promisify(execFile)('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q'], { cwd: REPO_ROOT });
  });
});

describe('the checks fail on a broken copy', () => {
  const broken = (edit: (c: Plain) => void): Plain => {
    const copy = structuredClone(compose);
    edit(copy);
    return copy;
  };

  it('catches two replicas advertising the same URL, and one naming another service', () => {
    const copy = broken((c) => (c.services['wharf-2'].environment.WHARF_CLUSTER_ADVERTISE_URL = 'http://wharf-1:5000'));
    expect(composeProblems(copy, nginxConf)).toEqual([
      'wharf-2: WHARF_CLUSTER_ADVERTISE_URL http://wharf-1:5000 is not http://wharf-2:5000',
      "wharf-2: advertise URL http://wharf-1:5000 is also wharf-1's",
    ]);
  });

  it('catches two replicas on one volume, and a missing replica', () => {
    const shared = broken((c) => (c.services['wharf-3'].volumes = c.services['wharf-3'].volumes.map((v: string) => v.replace('wharf-3-data', 'wharf-1-data'))));
    expect(composeProblems(shared, nginxConf)).toEqual(["wharf-3: volume wharf-1-data is also wharf-1's"]);
    const two = broken((c) => delete c.services['wharf-3']);
    expect(composeProblems(two, nginxConf)).toContain('expected 3 wharf services, found 2');
  });

  it('catches a replica without the cluster secret, and a secret file not in the repo', () => {
    const noSecret = broken((c) => (c.services['wharf-2'].secrets = ['s3-access-key-id', 's3-secret-access-key']));
    expect(composeProblems(noSecret, nginxConf)).toEqual(["wharf-2: secrets s3-access-key-id,s3-secret-access-key differ from wharf-1's cluster-secret,s3-access-key-id,s3-secret-access-key"]);
    const missing = broken((c) => (c.secrets['cluster-secret'].file = './config/examples/scale-out/secrets/cluster.secret'));
    expect(composeProblems(missing, nginxConf)).toEqual(['secret cluster-secret: ./config/examples/scale-out/secrets/cluster.secret is not in the repo']);
  });

  it('catches an nginx upstream that misses a replica or adds another port', () => {
    expect(composeProblems(compose, nginxConf.replace(/^\s*server wharf-3:5000.*$/m, ''))).toEqual(['nginx.conf: upstream servers wharf-1:5000 wharf-2:5000, expected wharf-1:5000 wharf-2:5000 wharf-3:5000']);
    expect(composeProblems(compose, nginxConf.replace('server wharf-2:5000', 'server wharf-2:5001'))).toEqual(['nginx.conf: upstream servers wharf-1:5000 wharf-2:5001 wharf-3:5000, expected wharf-1:5000 wharf-2:5000 wharf-3:5000']);
  });

  it('catches a config mount not in the repo, and a load balancer on another port', () => {
    const mount = broken((c) => (c.services['wharf-1'].volumes[0] = './config/examples/scale-out/wharf.yml:/etc/wharf/wharf.yaml:ro'));
    expect(composeProblems(mount, nginxConf)).toEqual(['wharf-1: config/examples/scale-out/wharf.yml is not in the repo']);
    const port = broken((c) => (c.services.lb.ports = ['8080:5000']));
    expect(composeProblems(port, nginxConf)).toEqual(['expected one load balancer publishing 5000, found none']);
  });

  it('a replica without its advertise URL does not start: wharf.yaml leaves it to the environment', async () => {
    const copy = broken((c) => delete c.services['wharf-1'].environment.WHARF_CLUSTER_ADVERTISE_URL);
    await expect(replicaConfig(copy.services['wharf-1'])).rejects.toThrow(/cluster\.advertiseUrl/);
  });

  it('a config file path that is no secret of the replica is reported', async () => {
    const copy = broken((c) => (c.services['wharf-1'].secrets = ['s3-access-key-id', 's3-secret-access-key']));
    const config = await replicaConfig(copy.services['wharf-1']);
    expect(unmountedFiles(config, copy.services['wharf-1'])).toEqual(['/run/secrets/cluster-secret']);
  });
});
