// `npm run bench:replicas` (issue 14): one wharf replica against three, each set behind one
// address, in one run, printed side by side. Both systems run the same code path: Redis for
// records and fill leases, blobs on S3 (radosgw, or s3rver) behind each replica's disk, a cluster secret.
// In front of each set sits the same tiny connection-level round-robin TCP balancer (its own
// Node process, written below), so A's single replica pays the same hop as B's three.
//
// Started here, all on 127.0.0.1 and stopped by PID: the bench origin (the reference registry
// with synthetic blobs, bench/origin.ts) behind the bench's simulated WAN (50 ms RTT, one
// 100 Mbit/s link shared by every connection, test/support/tcp-faults.ts, which counts the
// bytes it carries), one redis-server, one S3 server, 1 + 3 wharf replicas (A and B keep apart in
// Redis by keyPrefix and in the bucket by prefix), two balancers, and for the L1 figure one more
// replica on A's engines started with an empty disk.
//
// Figures, A and B measured in turn, alternating where the machine's drift matters:
//   1. herd: 48 clients on one uncached 64 MiB blob through the balancer: upstream bytes over
//      the blob's size (goal 1.0x), upstream GETs, wall time, slowest first byte, lease outcomes.
//   2. cached blob, aggregate: 16 clients (one connection each) read that blob over and over for
//      BENCH_SECONDS: total MB/s; rounds alternate A, B.
//   3. cached manifests by tag: wrk -t2 -c64 over 50 tags; rounds alternate A, B.
//   4. L1 miss served from S3 against a disk hit, on one replica started empty each repetition:
//      curl's time to first byte and MB/s, median of BENCH_L1_REPS.
//
// Environment: BENCH_SECONDS (default 8), BENCH_ROUNDS (default 3), BENCH_L1_REPS (default 3),
// BENCH_OUT (default docs/bench-results/2026-12-01-replicas.md). About 4-5 minutes on 2 cores.
// Needs docker-registry, redis-server, radosgw (ceph-mon, ceph-osd), wrk and curl (Debian packages), or s3rver (npm).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, createConnection, type Socket } from 'node:net';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { startOrigin } from './origin.ts';
import { MANIFEST_ACCEPT, herd, median, wrkRps } from './measure.ts';
import { startTcpFaults } from '../test/support/tcp-faults.ts';
import { startRedisServer } from '../test/support/redis-server.ts';
import { startS3Server, type S3Server } from '../test/support/s3-server.ts';

// radosgw (Debian's Ceph, a one-node cluster) by default: a real S3 implementation; BENCH_S3=s3rver for the npm one.
const S3_SERVER: 'radosgw' | 's3rver' = process.env.BENCH_S3 === 's3rver' ? 's3rver' : 'radosgw';
import { freePort } from '../test/support/free-port.ts';
import { makeTempDir, type TempDir } from '../test/support/temp-dir.ts';
import { stopProcess } from '../test/support/stop-process.ts';
import { metricValue } from '../test/support/metrics.ts';
import { run } from '../test/support/run.ts';
import { WHARF_ENTRY } from '../test/support/wharf-entry.ts';

const MiB = 1 << 20;
const SELF = new URL(import.meta.url).pathname;
const BLOB_SIZE = 64 * MiB;
const HERD_CLIENTS = 48;
const BLOB_CLIENTS = 16;
const TAGS = 50;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const L1_REPS = Number(process.env.BENCH_L1_REPS ?? 3);
const OUT = process.env.BENCH_OUT ?? new URL('../docs/bench-results/2026-12-01-replicas.md', import.meta.url).pathname;
const WAN_RTT_MS = 50;
const WAN_BYTES_PER_S = 100e6 / 8;

const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The balancer: `node bench/replicas.ts --balancer PORT...` listens on a free loopback port,
// prints it, and hands each new connection to the next backend in turn (no HTTP parsing).

function balancerMain(ports: number[]): void {
  let next = 0;
  const server = createServer({ noDelay: true }, (client: Socket) => {
    const port = ports[next++ % ports.length]!;
    const backend = createConnection({ host: '127.0.0.1', port, noDelay: true });
    const end = () => {
      client.destroy();
      backend.destroy();
    };
    client.on('error', end).on('close', end);
    backend.on('error', end).on('close', end);
    client.pipe(backend);
    backend.pipe(client);
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

interface Balancer {
  readonly url: string;
  stop(): Promise<void>;
}

async function startBalancer(ports: number[]): Promise<Balancer> {
  const child = spawn(process.execPath, [SELF, '--balancer', ...ports.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`balancer exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => stopProcess(child) };
}

// ---------------------------------------------------------------------------------------------
// Replicas: the config of test/support/wharf-replicas.ts, with the bench's log level (warn: no
// access log, as in bench/systems.ts), a Redis key prefix and S3 prefix per system.

interface Engines {
  readonly dir: TempDir;
  readonly upstreamUrl: string;
  readonly redisUrl: string;
  readonly s3: S3Server;
  readonly secretFile: string;
}

interface Replica {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  stop(): Promise<void>;
}

async function startReplica(engines: Engines, system: string, name: string): Promise<Replica> {
  const port = await freePort();
  const dataDir = join(engines.dir.path, `${system}-${name}`);
  const keyId = join(engines.dir.path, 's3-key-id');
  const secret = join(engines.dir.path, 's3-secret');
  const config = {
    listen: `127.0.0.1:${port}`,
    dataDir,
    logLevel: 'warn',
    threads: 1,
    redis: { url: engines.redisUrl, keyPrefix: `wharf-${system}:` },
    blobs: { s3: { endpoint: engines.s3.endpoint, bucket: engines.s3.bucket, prefix: `${system}/`, forcePathStyle: true, accessKeyIdFile: keyId, secretAccessKeyFile: secret } },
    cluster: { advertiseUrl: `http://127.0.0.1:${port}`, secretFile: engines.secretFile, replicaName: `${system}-${name}` },
    cache: { minFreeBytes: 0, tagTtlSeconds: 3600 },
    upstreams: [{ name: 'docker.io', url: engines.upstreamUrl, default: true, libraryPrefix: false }],
  };
  const configPath = join(engines.dir.path, `${system}-${name}.yaml`);
  await writeFile(configPath, stringify(config));
  // The command itself, so wharf runs with the Node settings of its first line (bench/systems.ts).
  const child: ChildProcess = spawn(WHARF_ENTRY, ['serve', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await request(`${url}/v2/`).then(
      async (r) => (await r.body.dump(), r.statusCode < 500),
      () => false,
    );
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopProcess(child);
      throw new Error(`${system}-${name} did not start:\n${stderr}`);
    }
    await sleep(100);
  }
  return { name: `${system}-${name}`, url, port, dataDir, stop: () => stopProcess(child) };
}

interface System {
  readonly label: string;
  readonly replicas: Replica[];
  readonly balancer: Balancer;
}

async function startSet(engines: Engines, label: string, count: number): Promise<System> {
  const replicas: Replica[] = [];
  try {
    for (let i = 0; i < count; i++) replicas.push(await startReplica(engines, label, `r${i}`));
    return { label, replicas, balancer: await startBalancer(replicas.map((r) => r.port)) };
  } catch (err) {
    for (const r of replicas) await r.stop();
    throw err;
  }
}

async function stopSet(system: System | undefined): Promise<void> {
  if (!system) return;
  await system.balancer.stop();
  for (const r of system.replicas) await r.stop();
}

// ---------------------------------------------------------------------------------------------
// Load.

/** Clients, each on its own connection, reading the blob over and over for `seconds`: MB/s over all. */
async function aggregateBlobMBps(url: string, clients: number, seconds: number, size: number): Promise<{ mbps: number; whole: number; bad: number }> {
  const stopAt = performance.now() + seconds * 1000;
  let bytes = 0;
  let whole = 0;
  let bad = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      const agent = new Agent({ connections: 1 });
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), Math.max(0, stopAt - performance.now()));
      try {
        while (performance.now() < stopAt) {
          let got = 0;
          try {
            const res = await request(url, { dispatcher: agent, signal: abort.signal });
            for await (const chunk of res.body) {
              const n = (chunk as Buffer).length;
              got += n;
              bytes += n;
            }
            if (res.statusCode === 200 && got === size) whole++;
            else bad++;
          } catch (err) {
            if (!abort.signal.aborted) {
              bad++;
              log(`blob client: ${String(err)}`);
            }
          }
        }
      } finally {
        clearTimeout(timer);
        await agent.destroy();
      }
    }),
  );
  return { mbps: bytes / ((performance.now() - started) / 1000) / 1e6, whole, bad };
}

/** One GET with curl: time to first byte (s), MB/s, and the status and size checked. */
async function curlGet(url: string, size: number): Promise<{ ttfbS: number; mbps: number; totalS: number }> {
  const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_starttransfer} %{time_total}', url], { timeoutMs: 120_000 });
  const [code, got, ttfb, total] = stdout.trim().split(' ');
  if (code !== '200' || Number(got) !== size) throw new Error(`${url}: HTTP ${code}, ${got} of ${size} bytes`);
  return { ttfbS: Number(ttfb), totalS: Number(total), mbps: Number(got) / Number(total) / 1e6 };
}

async function get(url: string, accept?: string): Promise<void> {
  const res = await request(url, accept ? { headers: { accept } } : {});
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
}

const sumMetric = async (replicas: readonly Replica[], name: string, labels: Record<string, string> = {}) =>
  (await Promise.all(replicas.map((r) => metricValue(r.url, name, labels)))).reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------------------------------------

type Figures = Record<string, number | string>;

async function main(): Promise<void> {
  const startedAt = new Date();
  const cleanups: Array<() => Promise<void>> = [];
  const results: Record<'A' | 'B', Figures> = { A: {}, B: {} };
  const l1: Figures = {};
  try {
    log('origin: pushing synthetic blobs and tags');
    const origin = await startOrigin();
    cleanups.push(() => origin.stop());
    const blob = await origin.blob('bench/herd', 'replicas-herd', BLOB_SIZE);
    for (let i = 0; i < TAGS; i++) await origin.image('bench/tiny', `t${i}`, [1024 + i]);
    const wan = await startTcpFaults({ host: '127.0.0.1', port: origin.registry.port });
    cleanups.push(() => wan.stop());
    wan.setLatency(WAN_RTT_MS);
    wan.setBandwidth(WAN_BYTES_PER_S, true);

    log('direct: one fetch of the blob over the WAN, no cache');
    const oneFetchS = (await herd(`${wan.url}/v2/bench/herd/blobs/${blob.digest}`, 1, blob.size)).wallS;
    results.A.oneFetchS = results.B.oneFetchS = oneFetchS;

    log(`engines: redis-server, ${S3_SERVER}`);
    const redis = await startRedisServer();
    cleanups.push(() => redis.stop());
    const s3 = await startS3Server({ server: S3_SERVER, bucket: 'wharf-bench' });
    cleanups.push(() => s3.stop());
    const dir = await makeTempDir('wharf-bench-replicas-');
    cleanups.push(() => dir.cleanup());
    const secretFile = join(dir.path, 'cluster-secret');
    await writeFile(secretFile, 'bench-replicas-share-this-secret-0123456789\n');
    await writeFile(join(dir.path, 's3-key-id'), `${s3.accessKeyId}\n`);
    await writeFile(join(dir.path, 's3-secret'), `${s3.secretAccessKey}\n`);
    const engines: Engines = { dir, upstreamUrl: wan.url, redisUrl: redis.url, s3, secretFile };

    log('systems: A = 1 replica, B = 3 replicas, each behind a round-robin balancer');
    const A = await startSet(engines, 'a', 1);
    cleanups.push(() => stopSet(A));
    const B = await startSet(engines, 'b', 3);
    cleanups.push(() => stopSet(B));
    const systems = [
      { key: 'A' as const, sys: A },
      { key: 'B' as const, sys: B },
    ];
    const blobPath = `/v2/bench/herd/blobs/${blob.digest}`;

    // 1. The herd: one at a time (they share the WAN link), each on its own keyspace and prefix.
    for (const { key, sys } of systems) {
      log(`${key}: herd of ${HERD_CLIENTS} on one uncached ${BLOB_SIZE / MiB} MiB blob`);
      await origin.registry.settleLog();
      const mark = origin.registry.requestLog().length;
      const bytesBefore = wan.responseBytes();
      const agent = new Agent();
      const h = await herd(`${sys.balancer.url}${blobPath}`, HERD_CLIENTS, blob.size, agent);
      await agent.close();
      await sleep(2000); // the publish to S3 and any late upstream request
      await origin.registry.settleLog();
      const f = results[key];
      f.herdUpstreamRatio = (wan.responseBytes() - bytesBefore) / blob.size;
      f.herdUpstreamGets = origin.registry.requestLog().slice(mark).filter((e) => e.method === 'GET' && e.path.endsWith(blob.digest)).length;
      f.herdWallS = h.wallS;
      f.herdOk = h.ok;
      f.herdSlowestFirstByteS = h.slowestFirstByteS;
      const leases = await Promise.all(['won', 'followed', 'taken-over'].map((o) => sumMetric(sys.replicas, 'wharf_fill_leases_total', { outcome: o })));
      f.herdLeases = leases.join(' / ');
      f.herdPublished = await sumMetric(sys.replicas, 'wharf_shared_blob_publishes_total', { result: 'published' });
    }

    // Warm: the blob on every replica's disk, the tags in every replica (directly, not balanced).
    log('warming: the blob and 50 tags on every replica');
    for (const { sys } of systems) {
      for (const r of sys.replicas) {
        await get(`${r.url}${blobPath}`);
        await get(`${r.url}${blobPath}`);
        for (let round = 0; round < 2; round++) for (let i = 0; i < TAGS; i++) await get(`${r.url}/v2/bench/tiny/manifests/t${i}`, MANIFEST_ACCEPT);
      }
    }
    await sleep(1500);

    // 2. Aggregate cached-blob throughput, rounds alternating A, B.
    const blobRuns: Record<'A' | 'B', number[]> = { A: [], B: [] };
    const blobBad: Record<'A' | 'B', number> = { A: 0, B: 0 };
    const blobWhole: Record<'A' | 'B', number> = { A: 0, B: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      for (const { key, sys } of round % 2 === 0 ? systems : [...systems].reverse()) {
        log(`${key}: ${BLOB_CLIENTS} clients on the cached blob, ${SECONDS} s (round ${round + 1} of ${ROUNDS})`);
        const r = await aggregateBlobMBps(`${sys.balancer.url}${blobPath}`, BLOB_CLIENTS, SECONDS, blob.size);
        blobRuns[key].push(r.mbps);
        blobBad[key] += r.bad;
        blobWhole[key] += r.whole;
      }
    }
    for (const { key } of systems) {
      results[key].blobMBps = median(blobRuns[key]);
      results[key].blobRuns = blobRuns[key].map((v) => v.toFixed(0)).join(', ');
      results[key].blobWholeBad = `${blobWhole[key]} / ${blobBad[key]}`;
    }

    // 3. Cached manifests by tag with wrk, a warm-up each, then rounds alternating A, B.
    const paths = Array.from({ length: TAGS }, (_, i) => `/v2/bench/tiny/manifests/t${i}`);
    for (const { key, sys } of systems) {
      log(`${key}: wrk warm-up`);
      await wrkRps(sys.balancer.url, paths, 3);
    }
    await origin.registry.settleLog();
    const manifestMark = origin.registry.requestLog().length;
    const wrkRuns: Record<'A' | 'B', Array<{ rps: number; p50Ms: number; p99Ms: number; errors: number }>> = { A: [], B: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const { key, sys } of round % 2 === 0 ? systems : [...systems].reverse()) {
        log(`${key}: wrk -t2 -c64 -d${SECONDS}s on 50 cached tags (round ${round + 1} of ${ROUNDS})`);
        wrkRuns[key].push(await wrkRps(sys.balancer.url, paths, SECONDS));
      }
    }
    await origin.registry.settleLog();
    const manifestUpstream = origin.registry.requestLog().length - manifestMark;
    for (const { key } of systems) {
      const runs = wrkRuns[key];
      const mid = [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)]!;
      results[key].manifestRps = mid.rps;
      results[key].manifestRuns = runs.map((r) => r.rps.toFixed(0)).join(', ');
      results[key].manifestP50P99 = `${mid.p50Ms.toFixed(2)} / ${mid.p99Ms.toFixed(2)}`;
      results[key].manifestErrors = runs.reduce((s, r) => s + r.errors, 0);
    }
    results.A.manifestUpstream = results.B.manifestUpstream = manifestUpstream;

    // 4. L1 miss from S3 against a disk hit: a replica on A's engines, started empty each time.
    await origin.registry.settleLog();
    const l1Mark = origin.registry.requestLog().length;
    const miss: Array<{ ttfbS: number; mbps: number }> = [];
    const hit: Array<{ ttfbS: number; mbps: number }> = [];
    let fromS3 = 0;
    for (let rep = 0; rep < L1_REPS; rep++) {
      log(`L1 probe: an empty replica, the blob from S3 then from its disk (${rep + 1} of ${L1_REPS})`);
      const probe = await startReplica(engines, 'a', `probe${rep}`);
      try {
        miss.push(await curlGet(`${probe.url}${blobPath}`, blob.size));
        await sleep(1500); // the L1 refill lands
        await curlGet(`${probe.url}${blobPath}`, blob.size);
        hit.push(await curlGet(`${probe.url}${blobPath}`, blob.size));
        fromS3 += await metricValue(probe.url, 'wharf_blob_fill_bytes_total', { origin: 's3' });
      } finally {
        await probe.stop();
        await rm(probe.dataDir, { recursive: true, force: true });
      }
    }
    await origin.registry.settleLog();
    l1.missTtfbMs = median(miss.map((m) => m.ttfbS)) * 1000;
    l1.missMBps = median(miss.map((m) => m.mbps));
    l1.hitTtfbMs = median(hit.map((m) => m.ttfbS)) * 1000;
    l1.hitMBps = median(hit.map((m) => m.mbps));
    l1.missRuns = miss.map((m) => `${m.mbps.toFixed(0)} MB/s, ${(m.ttfbS * 1000).toFixed(1)} ms`).join('; ');
    l1.hitRuns = hit.map((m) => `${m.mbps.toFixed(0)} MB/s, ${(m.ttfbS * 1000).toFixed(1)} ms`).join('; ');
    l1.upstreamGets = origin.registry.requestLog().slice(l1Mark).filter((e) => e.method === 'GET' && e.path.includes('/blobs/')).length;
    l1.fromS3Ratio = fromS3 / (blob.size * L1_REPS);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        log(`cleanup: ${String(err)}`);
      }
    }
  }

  const table = await render(startedAt, results, l1);
  process.stdout.write(table);
  await mkdir(new URL('../docs/bench-results/', import.meta.url).pathname, { recursive: true });
  await writeFile(OUT, table);
  log(`written to ${OUT}`);
}

async function render(startedAt: Date, r: Record<'A' | 'B', Figures>, l1: Figures): Promise<string> {
  const model = (await run('lscpu', []).then((o) => /^Model name:\s+(.+)$/m.exec(o.stdout)?.[1]?.trim(), () => undefined)) ?? cpus()[0]?.model ?? '?';
  const fmt = (v: number | string | undefined, digits = 2) => (v === undefined ? '–' : typeof v === 'string' ? v : Number.isNaN(v) ? '–' : v.toFixed(digits));
  const rows: Array<[string, string, (f: Figures) => string, string?]> = [
    [`herd: ${HERD_CLIENTS} clients, one uncached ${BLOB_SIZE / MiB} MiB blob: upstream bytes / blob`, '1.0', (f) => `${fmt(f.herdUpstreamRatio, 3)}x`],
    ['herd: upstream GETs of the blob', '1', (f) => fmt(f.herdUpstreamGets, 0)],
    ['herd: complete and correct', String(HERD_CLIENTS), (f) => fmt(f.herdOk, 0)],
    ['herd: wall s', `one fetch ${fmt(r.A.oneFetchS)}`, (f) => fmt(f.herdWallS), 'herdWallS'],
    ['herd: slowest time to first byte, s', '≤ 1', (f) => fmt(f.herdSlowestFirstByteS, 3)],
    ['herd: fill leases won / followed / taken over', '', (f) => fmt(f.herdLeases)],
    ['herd: blobs published to S3', '1', (f) => fmt(f.herdPublished, 0)],
    [`cached blob, ${BLOB_CLIENTS} clients, aggregate MB/s (median of ${ROUNDS} × ${SECONDS} s)`, '', (f) => fmt(f.blobMBps, 0), 'blobMBps'],
    ['... runs, MB/s', '', (f) => fmt(f.blobRuns)],
    ['... whole bodies / failed', '', (f) => fmt(f.blobWholeBad)],
    [`cached manifest by tag, wrk -t2 -c64, req/s (median of ${ROUNDS} × ${SECONDS} s)`, '', (f) => fmt(f.manifestRps, 0), 'manifestRps'],
    ['... runs, req/s', '', (f) => fmt(f.manifestRuns)],
    ['... p50 / p99 ms (median run)', '', (f) => fmt(f.manifestP50P99)],
    ['... errors / upstream requests (both systems)', '', (f) => `${fmt(f.manifestErrors, 0)} / ${fmt(f.manifestUpstream, 0)}`],
  ];
  const ratio = (k: string) => {
    const [a, b] = [r.A[k], r.B[k]];
    return typeof a === 'number' && typeof b === 'number' ? (b / a).toFixed(2) : '–';
  };
  return [
    `# wharf: 1 against 3 replicas behind one address, ${startedAt.toISOString()}`,
    '',
    `Machine: ${hostname()}, ${model}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}.`,
    `Command: \`npm run bench:replicas\` (BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}, BENCH_L1_REPS=${L1_REPS}).`,
    `Both systems: wharf replicas with \`threads: 1\` on one redis-server (a key prefix each) and one ${S3_SERVER} bucket (a prefix each),`,
    '`cluster` on, behind the same connection-level round-robin TCP balancer (a Node process); origin: the reference registry',
    `behind the bench's simulated WAN (${WAN_RTT_MS} ms RTT, 100 Mbit/s shared). Everything on 127.0.0.1.`,
    '',
    '| figure | goal | A: 1 replica | B: 3 replicas | B / A |',
    '|---|---|---|---|---|',
    ...rows.map(([name, goal, cell, key]) => `| ${name} | ${goal} | ${cell(r.A)} | ${cell(r.B)} | ${key ? ratio(key) : ''} |`),
    '',
    `L1 miss served from S3 against a disk hit, one replica on A's engines started with an empty disk each time, ${BLOB_SIZE / MiB} MiB blob, curl, median of ${L1_REPS}:`,
    '',
    '| | time to first byte, ms | MB/s |',
    '|---|---|---|',
    `| L1 miss, from S3 (${S3_SERVER}) | ${fmt(l1.missTtfbMs, 1)} | ${fmt(l1.missMBps, 0)} |`,
    `| disk hit (the read after next) | ${fmt(l1.hitTtfbMs, 1)} | ${fmt(l1.hitMBps, 0)} |`,
    `| miss / hit | ${typeof l1.missTtfbMs === 'number' && typeof l1.hitTtfbMs === 'number' ? (l1.missTtfbMs / l1.hitTtfbMs).toFixed(1) : '–'}x | ${typeof l1.missMBps === 'number' && typeof l1.hitMBps === 'number' ? (l1.missMBps / l1.hitMBps).toFixed(2) : '–'}x |`,
    '',
    `- runs, miss: ${fmt(l1.missRuns)}`,
    `- runs, hit: ${fmt(l1.hitRuns)}`,
    `- upstream blob GETs during the probe: ${fmt(l1.upstreamGets, 0)}; bytes the probes filled from S3 / (blob × reps): ${fmt(l1.fromS3Ratio, 2)}`,
    '',
  ].join('\n');
}

if (process.argv[2] === '--balancer') {
  balancerMain(process.argv.slice(3).map(Number));
} else {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
