// One step of `npm run bench:scale`: a data dir with N cached blobs and tags (scale-cache.ts),
// then what N costs: `wharf serve` started on it (time to answer, to know every blob, to go
// quiet; RSS), cached manifests by tag under wrk, then the blob index read in this process with
// wharf's own classes and an eviction pass that must evict, and last `wharf gc`.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { BlobIndex } from '../src/cache/blob-index.ts';
import { createDiskBlobStore } from '../src/cache/disk-blob-store.ts';
import { Evictor } from '../src/cache/evictor.ts';
import { createLogger } from '../src/logger.ts';
import { Metrics } from '../src/metrics/metrics.ts';
import { freePort } from '../test/support/free-port.ts';
import { run } from '../test/support/run.ts';
import { makeTempDir } from '../test/support/temp-dir.ts';
import { cpuSeconds, median, peakRssMB, resetPeakRss, wrkRps, type WrkResult } from './measure.ts';
import { populate, UPSTREAM } from './scale-cache.ts';
import { startProcess, WHARF_ENTRY, type System } from './systems.ts';

export type StepFigures = Record<string, number>;

const WRK_WARMUP_S = 5;
const WRK_RUN_S = 5;
const WRK_RUNS = 3;
/** Tags asked per second while memory fills from the store, at the least, here. */
const WARM_ALL_PER_S = 4000;
/** wharf counts as settled after start once it used less CPU than this over QUIET_MS. */
const QUIET_CPU_S = 0.03;
const QUIET_MS = 1000;
const START_DEADLINE_MS = 10 * 60_000;
const MONTH_S = 30 * 24 * 3600;
/** cache.memoryManifests' default (config/default.yaml). */
const DEFAULT_MEMORY_MANIFESTS = 4096;

/** gc: the global collector (node --expose-gc), for heap figures that are not garbage. */
const collect = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

export async function measureStep(blobs: number, tags: number, log: (line: string) => void): Promise<StepFigures> {
  const dir = await makeTempDir('wharf-bench-scale-');
  const f: StepFigures = { blobs, tags };
  try {
    const dataDir = join(dir.path, 'data');
    log(`${blobs} blobs, ${tags} tags: writing the data dir`);
    let started = performance.now();
    const cache = await populate(dataDir, blobs, tags);
    f.populateS = (performance.now() - started) / 1000;
    f.blobBytes = cache.blobBytes;

    const config = join(dir.path, 'wharf.yaml');
    const port = await freePort();
    await writeFile(config, wharfConfig(dataDir, port));
    log('wharf serve on it');
    const system = await startServer(config, port, dir.path, cache.blobs, f);
    try {
      if (cache.tagPaths.length > 0) {
        log(`manifests by tag, wrk -t1 -c64, random over ${cache.tagPaths.length} tags`);
        await manifestLoad(system, cache.tagPaths, f);
      }
    } finally {
      await system.stop();
    }

    if (cache.tagPaths.length > DEFAULT_MEMORY_MANIFESTS) {
      // The same with memory sized to every tag: what the memory bound costs, and what lifting it costs.
      log(`again with cache.memoryManifests: ${cache.tagPaths.length}`);
      await writeFile(config, wharfConfig(dataDir, port, undefined, cache.tagPaths.length));
      const sized: StepFigures = {};
      const again = await startServer(config, port, dir.path, cache.blobs, sized);
      try {
        await manifestLoad(again, cache.tagPaths, sized, true);
      } finally {
        await again.stop();
      }
      Object.assign(f, { sizedRssStartMB: sized.rssStartMB, sizedRps: sized.rps, sizedP99Ms: sized.p99Ms, sizedErrors: sized.errors, sizedRssLoadMB: sized.rssLoadMB });
    }

    log('blob index and eviction pass in this process');
    await inProcess(dataDir, f);

    log('wharf gc');
    // Within budget now that the pass above evicted: this is the scans of gc, not another pass.
    await writeFile(config, wharfConfig(dataDir, port, f.evictBudgetBytes));
    started = performance.now();
    const { stderr } = await run('/usr/bin/time', ['-f', 'peak-kib %M', WHARF_ENTRY, 'gc', '--config', config], { timeoutMs: START_DEADLINE_MS });
    f.gcS = (performance.now() - started) / 1000;
    f.gcRssMB = (Number(/peak-kib (\d+)/.exec(stderr)?.[1] ?? NaN) * 1024) / 1e6;
    return f;
  } finally {
    await dir.cleanup();
  }
}

/**
 * The index exactly as wharf builds it (BlobIndex over the disk store), timed and weighed on
 * this process's heap, then an eviction pass with a budget just under the cache (it evicts
 * down to 90 % of it, as the server's pass does).
 */
async function inProcess(dataDir: string, f: StepFigures): Promise<void> {
  const store = createDiskBlobStore(dataDir);
  const metrics = new Metrics({ processMetrics: false });
  const index = new BlobIndex({ store, metrics });
  collect();
  const heapBefore = process.memoryUsage().heapUsed;
  let started = performance.now();
  await index.load();
  f.indexLoadMs = performance.now() - started;
  collect();
  f.indexHeapBytes = process.memoryUsage().heapUsed - heapBefore;
  f.evictBudgetBytes = index.bytes - 1;
  const evictor = new Evictor(
    { index, store, metrics, logger: createLogger('silent') },
    // No grace period: the manifest load above used (and touched) every blob a moment ago.
    { dataDir, maxBytes: f.evictBudgetBytes, minFreeBytes: 0, pinned: async () => new Set(), protectMs: 0 },
  );
  started = performance.now();
  await evictor.plan();
  f.evictPlanMs = performance.now() - started;
  started = performance.now();
  const plan = await evictor.enforce();
  f.evictMs = performance.now() - started;
  f.evicted = plan.victims.length;
}

function wharfConfig(dataDir: string, port: number, maxBytes?: number, memoryManifests?: number): string {
  return stringify({
    listen: `127.0.0.1:${port}`,
    dataDir,
    logLevel: 'warn',
    threads: 1,
    // Tags stay fresh for the whole run, so every request is a cache hit; nothing listens at
    // the upstream's address, so anything that would go upstream shows as an error in wrk.
    cache: { minFreeBytes: 0, tagTtlSeconds: MONTH_S, ...(maxBytes === undefined ? {} : { maxBytes }), ...(memoryManifests === undefined ? {} : { memoryManifests }) },
    upstreams: [{ name: UPSTREAM, url: 'http://127.0.0.1:9', default: true, libraryPrefix: false }],
  });
}

/**
 * Starts wharf and times, from the spawn: answering /v2/ (ready), wharf_cache_blobs reaching
 * every blob (the index, read in the background), and CPU going quiet (the index and the
 * start's scan of every tag for links). RSS once quiet.
 */
async function startServer(config: string, port: number, dir: string, blobs: number, f: StepFigures): Promise<System> {
  const url = `http://127.0.0.1:${port}`;
  const spawned = performance.now();
  let readyAt: number | undefined;
  // Polled more finely than startProcess does, so that ready is timed to ~10 ms.
  const pollReady = (async () => {
    while (readyAt === undefined && performance.now() - spawned < START_DEADLINE_MS) {
      const answered = await request(`${url}/v2/`).then(
        async (r) => (await r.body.dump(), r.statusCode < 500),
        () => false,
      );
      if (answered) readyAt = performance.now();
      else await sleep(10);
    }
  })();
  // Its stop() removes this dir, which the bench removes itself: the data dir outlives the server.
  const system = await startProcess('wharf', WHARF_ENTRY, ['serve', '--config', config], url, { path: dir, cleanup: async () => undefined });
  await pollReady;
  f.readyMs = readyAt! - spawned;
  while ((await cachedBlobs(url)) < blobs) {
    if (performance.now() - spawned > START_DEADLINE_MS) throw new Error('wharf did not index the cache in time');
    await sleep(20);
  }
  f.indexedMs = performance.now() - spawned;
  f.quietMs = (await quietSince(system.pids(), spawned)) - spawned;
  const pids = system.pids();
  resetPeakRss(pids); // the peak becomes the current RSS
  f.rssStartMB = peakRssMB(pids);
  return system;
}

/** When the processes last used CPU before a quiet stretch of QUIET_MS. */
async function quietSince(pids: number[], since: number): Promise<number> {
  const samples: Array<{ at: number; cpu: number }> = [];
  for (;;) {
    samples.push({ at: performance.now(), cpu: cpuSeconds(pids) });
    const last = samples.at(-1)!;
    const windowStart = samples.find((s) => last.at - s.at <= QUIET_MS);
    if (windowStart && last.at - windowStart.at >= QUIET_MS - 150 && last.cpu - windowStart.cpu < QUIET_CPU_S) return windowStart.at;
    if (last.at - since > START_DEADLINE_MS) throw new Error('wharf did not go quiet after start');
    await sleep(50);
  }
}

async function cachedBlobs(url: string): Promise<number> {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  return Number(/^wharf_cache_blobs (\d+)/m.exec(text)?.[1] ?? 0);
}

/** warmAll: warm up with every path in turn, long enough to ask for each (memory sized to hold them all). */
async function manifestLoad(system: System, paths: readonly string[], f: StepFigures, warmAll = false): Promise<void> {
  const wrk = (seconds: number, order: 'random' | 'cycle' = 'random') => wrkRps(system.url, paths, seconds, undefined, {}, { threads: 1, order });
  // A warm-up first: the JIT, and the in-memory LRUs filling with what random picks.
  if (warmAll) await wrk(Math.max(WRK_WARMUP_S, Math.ceil(paths.length / WARM_ALL_PER_S)), 'cycle');
  else await wrk(WRK_WARMUP_S);
  const pids = system.pids();
  resetPeakRss(pids);
  const runs: WrkResult[] = [];
  for (let i = 0; i < WRK_RUNS; i++) runs.push(await wrk(WRK_RUN_S));
  f.rssLoadMB = peakRssMB(pids);
  const rps = median(runs.map((r) => r.rps));
  const middle = runs.find((r) => r.rps === rps)!;
  f.rps = rps;
  f.p50Ms = middle.p50Ms;
  f.p99Ms = middle.p99Ms;
  f.errors = runs.reduce((sum, r) => sum + r.errors, 0);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
