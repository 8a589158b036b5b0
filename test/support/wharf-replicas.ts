// Several wharf processes sharing one Redis (plain or through a sentinel) and one S3 bucket, as
// a scale-out deployment runs them: each with its own data dir (its disk cache), its own port
// and name, and the cluster secret they show each other. Each is a real process, so a test can
// kill -9 one of them. Loopback only.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './free-port.ts';
import { makeTempDir, type TempDir } from './temp-dir.ts';
import type { S3Server } from './s3-server.ts';
import { startWharfProcess, type WharfProcess } from './wharf-process.ts';

export interface Replica {
  readonly name: string;
  readonly url: string;
  readonly dataDir: string;
  readonly process: WharfProcess;
  /** kill -9. */
  kill(): Promise<void>;
  /** SIGTERM, and waits for the exit. */
  stop(): Promise<void>;
}

export interface ReplicaSet {
  readonly replicas: Replica[];
  /** Starts one more replica (an empty data dir) on the same engines. */
  add(): Promise<Replica>;
  stop(): Promise<void>;
}

export interface ReplicaOptions {
  readonly upstreamUrl: string;
  /** The redis block of the config (url, or sentinels and sentinelName). */
  readonly redis: Record<string, unknown>;
  readonly s3: S3Server;
  readonly count: number;
  readonly leaseMs?: number;
  readonly tagTtlSeconds?: number;
  /** Threads per replica, by index (default 1): a mixed set covers both paths. */
  readonly threads?: readonly number[];
}

export async function startReplicas(opts: ReplicaOptions): Promise<ReplicaSet> {
  const dir: TempDir = await makeTempDir('wharf-replicas-');
  const secretFile = join(dir.path, 'cluster-secret');
  await writeFile(secretFile, 'replicas-share-this-secret-0123456789abcdef\n');
  await writeFile(join(dir.path, 's3-key-id'), `${opts.s3.accessKeyId}\n`);
  await writeFile(join(dir.path, 's3-secret'), `${opts.s3.secretAccessKey}\n`);
  const replicas: Replica[] = [];
  let started = 0;

  const add = async (): Promise<Replica> => {
    const index = started++;
    const name = `replica-${index}`;
    const port = await freePort();
    const dataDir = join(dir.path, name);
    const config = {
      listen: `127.0.0.1:${port}`,
      dataDir,
      logLevel: 'info',
      threads: opts.threads?.[index] ?? 1,
      redis: opts.redis,
      blobs: {
        s3: {
          endpoint: opts.s3.endpoint,
          bucket: opts.s3.bucket,
          forcePathStyle: true,
          accessKeyIdFile: join(dir.path, 's3-key-id'),
          secretAccessKeyFile: join(dir.path, 's3-secret'),
        },
      },
      cluster: { advertiseUrl: `http://127.0.0.1:${port}`, secretFile, replicaName: name, leaseMs: opts.leaseMs ?? 3000 },
      cache: { tagTtlSeconds: opts.tagTtlSeconds ?? 3600 },
      upstreams: [{ name: 'docker.io', url: opts.upstreamUrl, default: true }],
    };
    const configPath = join(dir.path, `${name}.yaml`);
    await writeFile(configPath, stringify(config));
    const child = startWharfProcess(['serve', '--config', configPath]);
    const url = await child.listening();
    const replica: Replica = {
      name,
      url,
      dataDir,
      process: child,
      async kill() {
        child.child.kill('SIGKILL');
        await child.exited;
      },
      async stop() {
        if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGTERM');
        await child.exited;
      },
    };
    replicas.push(replica);
    return replica;
  };

  try {
    for (let i = 0; i < opts.count; i++) await add();
  } catch (err) {
    await Promise.all(replicas.map((r) => r.stop()));
    await dir.cleanup();
    throw err;
  }
  return {
    replicas,
    add,
    async stop() {
      await Promise.all(replicas.map((r) => r.stop()));
      await dir.cleanup();
    },
  };
}
