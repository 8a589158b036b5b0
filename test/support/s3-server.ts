// Starts an S3-compatible server on 127.0.0.1 with one bucket, for the S3 blob store's tests.
// Two servers, chosen per test file (docs/s3-servers.md compares them):
//
// - 'radosgw': Ceph's S3 gateway (Debian packages radosgw ceph-mon ceph-osd ceph-common, which
//   .ci/run installs) on a throwaway one-node cluster (one mon, one memstore OSD, data in RAM)
//   brought up by scripts/radosgw-one-node.sh in a fresh temp dir, ~13 s plus ~5 s for the first
//   bucket. The faithful one: it checks SigV4 signatures (a wrong secret or a tampered presigned
//   URL gets 403), refuses PutObject with If-None-Match: * on an existing key (412, the object
//   stays), really removes an upload on AbortMultipartUpload (204), rejects non-last parts under
//   5 MiB (EntityTooSmall) and answers suffix ranges exactly. It does not honour If-None-Match
//   on CompleteMultipartUpload (the second publish overwrites), so that path still needs the
//   fault proxy (s3-fault-proxy.ts). Missing binaries are an error, never a skip.
// - 's3rver' (npm, the default): starts in about a second, needs nothing installed, but is
//   lenient, so tests must not lean on what it lets through: it checks no SigV4 signature (any
//   credentials with its access key pass), ignores If-None-Match on PUT and
//   CompleteMultipartUpload (a second publish overwrites), answers AbortMultipartUpload with 405
//   and returns one byte too many for a suffix range (`bytes=-5`). A lenient server must not make
//   wharf wrong either, so the contract suite runs on both.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, openSync, closeSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { freePort } from './free-port.ts';
import { makeTempDir } from './temp-dir.ts';
import { stopProcess } from './stop-process.ts';

const HOST = '127.0.0.1';
const S3RVER_START_TIMEOUT_MS = 15_000;
/** Whole radosgw start: the script's bring-up plus the first bucket. */
const RADOSGW_START_TIMEOUT_MS = 60_000;
const RADOSGW_PORT_ATTEMPTS = 5;
const RADOSGW_SCRIPT = fileURLToPath(new URL('../../scripts/radosgw-one-node.sh', import.meta.url));
/** What scripts/radosgw-one-node.sh runs, and the Debian packages they come from. */
const RADOSGW_BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'ceph-authtool', 'monmaptool', 'curl'];
const RADOSGW_PACKAGES = 'radosgw ceph-mon ceph-osd ceph-common curl';

export type S3ServerKind = 'radosgw' | 's3rver';

export interface S3ServerOptions {
  /** Which server; 's3rver' when left out. */
  readonly server?: S3ServerKind;
  /** The bucket created for the tests: 'wharf' when left out. */
  readonly bucket?: string;
}

export interface S3Server {
  /** http://127.0.0.1:<port>, for an S3 client with path-style addressing. */
  readonly endpoint: string;
  readonly bucket: string;
  /** The server's credentials: a user created at start on radosgw (checked), fixed on s3rver (not checked). */
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /**
   * The server's own directory: s3rver keeps the objects there (for tests that look behind the
   * API); for radosgw it holds the cluster's ceph.conf, keyring and logs (objects are in RAM).
   */
  readonly directory: string;
  stop(): Promise<void>;
}

/** `startS3Server('name')` is the old form: s3rver with that bucket. */
export async function startS3Server(options: S3ServerOptions | string = {}): Promise<S3Server> {
  const { server = 's3rver', bucket = 'wharf' } = typeof options === 'string' ? { bucket: options } : options;
  return server === 'radosgw' ? startRadosgw(bucket) : startS3rver(bucket);
}

async function startS3rver(bucket: string): Promise<S3Server> {
  const dir = await makeTempDir('wharf-s3rver-');
  const bin = join(dirname(createRequire(import.meta.url).resolve('s3rver/package.json')), 'bin', 's3rver.js');
  // Port 0: s3rver binds a free port itself and prints it, so no port can be taken in between.
  const child = spawn(process.execPath, [bin, '-d', dir.path, '-a', HOST, '-p', '0', '-s', '--configure-bucket', bucket], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const stop = async () => {
    await stopProcess(child);
    await dir.cleanup();
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`s3rver did not start within ${S3RVER_START_TIMEOUT_MS} ms:\n${output}`)), S3RVER_START_TIMEOUT_MS);
      const onData = (d: Buffer) => {
        output += d.toString();
        const m = /listening on [^:\s]+:(\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited (${code}) before listening:\n${output}`));
      });
    });
    return { endpoint: `http://${HOST}:${port}`, bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', directory: dir.path, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function onPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      // not in this one
    }
  }
  return false;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** A free port whose +1 (the mon's) is free too, a moment ago. */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    if (port < 65535 && (await portIsFree(port + 1))) return port;
  }
  throw new Error('found no free pair of ports on 127.0.0.1 for radosgw and its mon');
}

/** Runs the script to its exit, its output in a file (the daemons it starts inherit that, not a pipe). */
async function runScript(args: string[], logPath: string, timeoutMs: number): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  const fd = openSync(logPath, 'a');
  try {
    const child = spawn('bash', [RADOSGW_SCRIPT, ...args], { stdio: ['ignore', fd, fd] });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
    }, timeoutMs);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    }).finally(() => clearTimeout(timer));
    return { code, output: readFileSync(logPath, 'utf8'), timedOut };
  } finally {
    closeSync(fd);
  }
}

async function startRadosgw(bucket: string): Promise<S3Server> {
  const missing = RADOSGW_BINARIES.filter((bin) => !onPath(bin));
  if (missing.length > 0) {
    throw new Error(
      `radosgw tests need Ceph, but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not on PATH: ` +
        `install the Debian packages ${RADOSGW_PACKAGES} (apt-get install --no-install-recommends ${RADOSGW_PACKAGES}), as .ci/run does`,
    );
  }
  const started = Date.now();
  const left = () => RADOSGW_START_TIMEOUT_MS - (Date.now() - started);
  const dir = await makeTempDir('wharf-radosgw-');
  let cluster: string | undefined;
  let stopped: Promise<void> | undefined;
  // Should the test process exit without stop(), do not leave daemons behind: at exit, and (for
  // a worker killed outright) a watchdog that stops the cluster once this process is gone.
  const onExit = () => {
    if (cluster) spawnSync('bash', [RADOSGW_SCRIPT, 'stop', cluster], { stdio: 'ignore', timeout: 20_000 });
  };
  process.once('exit', onExit);
  const watchdog = spawn(
    'bash',
    ['-c', 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; for d in "$3"/cluster-*; do [ -d "$d" ] && bash "$2" stop "$d"; done; rm -rf "$3"', 'watchdog', String(process.pid), RADOSGW_SCRIPT, dir.path],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (watchdog.exitCode === null && watchdog.signalCode === null) watchdog.kill('SIGKILL');
      if (cluster) {
        const { code, output } = await runScript(['stop', cluster], join(dir.path, 'stop.log'), 30_000);
        if (code !== 0) throw new Error(`scripts/radosgw-one-node.sh stop ${cluster} failed (${code}):\n${output}`);
      }
      process.removeListener('exit', onExit);
      await dir.cleanup();
    })());

  try {
    let output = '';
    for (let attempt = 1; ; attempt++) {
      const port = await freePortPair();
      // A fresh cluster dir per attempt: the script refuses one that already holds a cluster.
      cluster = join(dir.path, `cluster-${attempt}`);
      const log = join(dir.path, `start-${attempt}.log`);
      const run = await runScript(['start', cluster, String(port)], log, Math.max(left(), 1000));
      output = run.output;
      if (run.code === 0) break;
      // A failed start stops what it started; a timed-out one may not have got that far.
      await runScript(['stop', cluster], join(dir.path, 'stop.log'), 30_000);
      const what = run.timedOut ? `did not start within ${RADOSGW_START_TIMEOUT_MS} ms` : `failed (exit ${run.code})`;
      // Only a port someone took in between is worth another try.
      if (run.timedOut || !/is taken/.test(output) || attempt >= RADOSGW_PORT_ATTEMPTS || left() <= 0) {
        throw new Error(`radosgw (scripts/radosgw-one-node.sh start ${cluster} ${port}) ${what}; logs in ${cluster}/log:\n${output}`);
      }
    }
    const field = (name: string) => {
      const m = new RegExp(`^${name}=(\\S+)$`, 'm').exec(output);
      if (!m) throw new Error(`scripts/radosgw-one-node.sh printed no ${name}:\n${output}`);
      return m[1]!;
    };
    const endpoint = field('S3_ENDPOINT');
    const accessKeyId = field('S3_ACCESS_KEY');
    const secretAccessKey = field('S3_SECRET_KEY');
    const region = field('S3_REGION');

    // The first bucket takes radosgw a few seconds (it creates the index and data pools then).
    const client = new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
    try {
      const within = () => ({ abortSignal: AbortSignal.timeout(Math.max(left(), 5000)) });
      await client.send(new CreateBucketCommand({ Bucket: bucket }), within());
      // Warm-up: radosgw creates more pools on the first object lookup (~2 s) and the first
      // multipart upload (~2 s). Done here, so no test's first request pays for it (the
      // scale-out test bounds a first byte to 1 s). Nothing is left in the bucket.
      const probe = '.wharf-test-warm-up';
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: probe }), within()).catch((err: unknown) => {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw err;
      });
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: probe, Body: new Uint8Array(1) }), within());
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: probe }), within());
      const upload = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: probe }), within());
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: probe, UploadId: upload.UploadId }), within());
    } catch (err) {
      throw new Error(`radosgw at ${endpoint} started, but creating and warming up bucket ${bucket} failed: ${String(err)}\n${output}`);
    } finally {
      client.destroy();
    }
    return { endpoint, bucket, accessKeyId, secretAccessKey, directory: cluster, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
