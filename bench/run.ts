// `npm run bench`: wharf (embedded and Redis stores), the reference registry in proxy mode and
// nginx proxy_cache, each started fresh in front of the same origin behind the same simulated
// WAN (50 ms per round trip, one 100 Mbit/s link shared by all connections), measured one after
// the other in one run (cached manifests and cold fills in rounds across all systems, so that a
// slow spell of the VM falls on every system alike), printed side by side with wharf's ratios
// against its targets.
//
// Environment: BENCH_SYSTEMS (default wharf,wharf-2t,wharf-log,wharf-log-2t,wharf-redis-2t,wharf-s3,registry,nginx,node-bare;
// wharf-s3: blobs shared on a local radosgw (BENCH_S3=s3rver: the npm server) behind the disk;
// also wharf-redis, and wharf-tls, wharf-tls-2t: HTTPS only, and wharf-auth, wharf-auth-2t: auth on, each
// printed against the plain wharf beside them; wharf-log*: the access log on as shipped; node-bare:
// bare node:http, manifests only), BENCH_SECTIONS (default
// cold,herd,large,manifest,fill), BENCH_FILL_ROUNDS (cold fills per system, default 3, the median
// counts), BENCH_SCALE (blob sizes, default 1), BENCH_OUT (also write the
// markdown table to this file). Needs docker-registry,
// redis-server, skopeo, nginx, wrk, curl and for wharf-s3 radosgw (Debian packages). Loopback only.
import { hostname } from 'node:os';
import { writeFile } from 'node:fs/promises';
import { startOrigin } from './origin.ts';
import { startSystem, type System, type SystemKind } from './systems.ts';
import { MANIFEST_ACCEPT, blobMBps, cpuSeconds, warmPagePool, herd, median, peakRssMB, resetPeakRss, rssMB, slope, timedPull, wrkRps, type WrkResult } from './measure.ts';
import { request } from 'undici';
import { startTcpFaults, type TcpFaults } from '../test/support/tcp-faults.ts';

const MiB = 1 << 20;
const scale = Number(process.env.BENCH_SCALE ?? 1);
const kinds = (process.env.BENCH_SYSTEMS ?? 'wharf,wharf-2t,wharf-log,wharf-log-2t,wharf-redis-2t,wharf-s3,registry,nginx,node-bare').split(',') as SystemKind[];
const sections = new Set((process.env.BENCH_SECTIONS ?? 'cold,herd,large,manifest,fill').split(','));
const WAN_RTT_MS = 50;
const WAN_BYTES_PER_S = 100e6 / 8;
const HERD_CLIENTS = 32;
const DIRECT_PULLS = 3;
const TAGS = 50;
const MANIFEST_ROUNDS = 4;
const RUNS_PER_ROUND = 2;
const MANIFEST_RUNS = MANIFEST_ROUNDS * RUNS_PER_ROUND;
/** The runs RSS growth is read over: from the fourth on, once the heaps have sized themselves. */
const CREEP_FROM_RUN = 4;
const MANIFEST_RUN_S = 4;
const FILL_ROUNDS = Number(process.env.BENCH_FILL_ROUNDS ?? 3);

type Figures = Record<string, number>;
const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const size = (mib: number) => Math.round(mib * MiB * scale);
const hostOf = (url: string) => new URL(url).host;

async function main(): Promise<void> {
  log('origin: pushing synthetic images');
  const origin = await startOrigin();
  const wan = await startTcpFaults({ host: '127.0.0.1', port: origin.registry.port });
  try {
    const want = (section: string) => sections.has(section);
    const none = { digest: '', size: 0, bytes: 0 };
    const medium = want('cold') ? await origin.image('bench/medium', 'latest', [size(40), size(35), size(20)]) : none;
    const herdBlob = want('herd') ? await origin.blob('bench/herd', 'herd', size(60)) : none;
    const fillBlob = want('fill') ? await origin.blob('bench/fill', 'fill', size(256)) : none;
    const largeBlob = want('large') ? await origin.blob('bench/large', 'large', size(500)) : none;
    if (want('manifest')) for (let i = 0; i < TAGS; i++) await origin.image('bench/tiny', `t${i}`, [1024 + i]);
    const wanLink = () => {
      wan.setLatency(WAN_RTT_MS);
      wan.setBandwidth(WAN_BYTES_PER_S, true);
    };
    wanLink();

    log('direct: pull and one blob fetch over the WAN, no cache');
    const direct: Figures = {};
    // Three direct pulls, the median counts: one pull through this WAN varied by 8 % from run to
    // run (8.94 s against 9.62), as much as the target's margin.
    if (want('cold')) {
      const pulls: number[] = [];
      for (let i = 0; i < DIRECT_PULLS; i++) pulls.push(await timedPull(hostOf(wan.url), 'bench/medium:latest'));
      direct.pullS = median(pulls);
      log(`direct pulls, s: ${pulls.map((p) => p.toFixed(2)).join(', ')}`);
    }
    if (want('herd')) direct.oneFetchS = (await herd(`${wan.url}/v2/bench/herd/blobs/${herdBlob.digest}`, 1, herdBlob.size)).wallS;

    const results = new Map<string, Figures>();
    const fillKinds: SystemKind[] = [];
    // Each system serves the manifest rounds as the process that pulled, served the herd and the
    // large blob before: a cache's state in use, not a fresh start (bench:creep has that).
    const manifestSystems: Array<{ kind: string; system: System }> = [];
    try {
      for (const kind of kinds) {
        log(`${kind}: starting with an empty cache`);
        const system = await startSystem(kind, wan.url);
        let keep = false;
        try {
          results.set(kind, await measureSystem(kind, system, { origin, wan, wanLink, medium, herdBlob, largeBlob }));
          keep = want('manifest') && serves(system, 'manifest');
          if (keep) manifestSystems.push({ kind, system });
        } finally {
          if (!keep) await system.stop();
        }
        if (serves(system, 'fill')) fillKinds.push(kind);
      }
      if (manifestSystems.length) await measureManifestRounds(manifestSystems, origin, results);
    } finally {
      for (const { system } of manifestSystems) await system.stop();
    }
    if (want('fill')) await measureFills(fillKinds, origin, fillBlob, results);
    const table = renderTable(direct, results, medium.bytes);
    process.stdout.write(table);
    if (process.env.BENCH_OUT) await writeFile(process.env.BENCH_OUT, table);
  } finally {
    await wan.stop();
    await origin.stop();
  }
}

/**
 * The systems in the order one round of fills visits them: as listed, reversed, then evens before
 * odds, and so on. What runs just before a fill shapes it on this VM: in one run the registry,
 * always right after wharf-s3 (whose S3 server takes ~30 s to start, the machine mostly idle),
 * filled at 719-769 MB/s against 515-538 in a run of the fill section alone. So each system
 * follows a different one from round to round.
 */
function fillRoundOrder<T>(kinds: readonly T[], round: number): T[] {
  switch ((round - 1) % 3) {
    case 0:
      return [...kinds];
    case 1:
      return [...kinds].reverse();
    default:
      return [...kinds.filter((_, i) => i % 2 === 0), ...kinds.filter((_, i) => i % 2 === 1)];
  }
}

/**
 * Cold fill with nothing between the system and the origin: the proxy's own fill path. This VM's
 * throughput wanders by tens of percent within minutes, so each system fills FILL_ROUNDS times,
 * one round visiting every system in turn (fillRoundOrder), and the median counts: a slow minute
 * then falls on every system alike instead of on whichever ran in it.
 */
async function measureFills(fillKinds: readonly SystemKind[], origin: Context['origin'], blob: { digest: string; size: number }, results: Map<string, Figures>): Promise<void> {
  const path = `/v2/bench/fill/blobs/${blob.digest}`;
  const rates = new Map<string, number[]>(fillKinds.map((kind) => [kind, []]));
  const sharedS = new Map<string, number[]>(fillKinds.map((kind) => [kind, []]));
  for (let round = 1; round <= FILL_ROUNDS; round++) {
    for (const kind of fillRoundOrder(fillKinds, round)) {
      log(`${kind}: cold fill straight from the origin (round ${round} of ${FILL_ROUNDS})`);
      const system = await startSystem(kind, origin.registry.url);
      try {
        warmPagePool(2 * blob.size);
        const startedAt = performance.now();
        rates.get(kind)!.push(await blobMBps(`${system.url}${path}`, blob.size, system.caFile, system.authorizationFor?.(path)));
        // With a shared store: how long until the blob is there too, from the client's first request.
        if (system.sharedBlobLanded) {
          await system.sharedBlobLanded(blob.digest);
          sharedS.get(kind)!.push((performance.now() - startedAt) / 1000);
        }
      } finally {
        await system.stop();
      }
    }
  }
  for (const kind of fillKinds) {
    const f = results.get(kind)!;
    const r = rates.get(kind)!;
    f.coldFillMBps = median(r);
    f.coldFillMinMBps = Math.min(...r);
    f.coldFillMaxMBps = Math.max(...r);
    if (sharedS.get(kind)!.length) f.coldFillSharedS = median(sharedS.get(kind)!);
  }
}

/** Whether the section makes sense for the system (node-bare answers manifests alone). */
function serves(system: System, section: string): boolean {
  return system.sections?.has(section) ?? true;
}

interface Context {
  origin: Awaited<ReturnType<typeof startOrigin>>;
  wan: TcpFaults;
  wanLink: () => void;
  medium: { bytes: number };
  herdBlob: { digest: string; size: number };
  largeBlob: { digest: string; size: number };
}

async function measureSystem(kind: string, system: System, ctx: Context): Promise<Figures> {
  const f: Figures = {};
  const upstreamGets = async (digest: string, since: number) => {
    await ctx.origin.registry.settleLog();
    return ctx.origin.registry.requestLog().slice(since).filter((e) => e.method === 'GET' && e.path.endsWith(digest)).length;
  };

  const want = (section: string) => sections.has(section) && serves(system, section);
  if (want('cold')) await measureColdPull(kind, system, ctx, f);
  if (want('herd')) await measureHerd(kind, system, ctx, f, upstreamGets);
  if (want('large')) await measureLargeBlob(kind, system, ctx, f);
  return f;
}

async function measureColdPull(kind: string, system: System, ctx: Context, f: Figures): Promise<void> {
  log(`${kind}: cold pull`);
  const bytesBefore = ctx.wan.responseBytes();
  f.coldPullS = await timedPull(hostOf(system.url), 'bench/medium:latest', system.creds);
  f.coldPullUpstreamMB = (ctx.wan.responseBytes() - bytesBefore) / 1e6;
}

async function measureHerd(kind: string, system: System, ctx: Context, f: Figures, upstreamGets: (digest: string, since: number) => Promise<number>): Promise<void> {

  log(`${kind}: herd of ${HERD_CLIENTS} on one uncached blob`);
  await ctx.origin.registry.settleLog();
  const mark = ctx.origin.registry.requestLog().length;
  log(`${kind}: RSS before the herd ${rssMB(system.pids()).toFixed(1)} MB`);
  resetPeakRss(system.pids());
  const h = await herd(`${system.url}/v2/bench/herd/blobs/${ctx.herdBlob.digest}`, HERD_CLIENTS, ctx.herdBlob.size, system.dispatcher);
  f.herdRssMB = peakRssMB(system.pids());
  f.herdWallS = h.wallS;
  f.herdOk = h.ok;
  f.herdSlowestFirstByteS = h.slowestFirstByteS;
  f.herdUpstreamGets = await upstreamGets(ctx.herdBlob.digest, mark);
}

async function measureLargeBlob(kind: string, system: System, ctx: Context, f: Figures): Promise<void> {
  log(`${kind}: cached large blob (filled with the WAN link open)`);
  ctx.wan.setLatency(0);
  ctx.wan.setBandwidth(undefined);
  try {
    const large = `${system.url}/v2/bench/large/blobs/${ctx.largeBlob.digest}`;
    await blobMBps(large, ctx.largeBlob.size, system.caFile, system.authorizationFor?.(large));
    await new Promise((r) => setTimeout(r, 3000)); // caches that store in the background
    await system.sharedBlobLanded?.(ctx.largeBlob.digest); // and wharf-s3's upload to S3
    // Seven reads of 0.2 s each: single streams at these speeds vary by 2x from read to read.
    const reads: number[] = [];
    for (let i = 0; i < 7; i++) reads.push(await blobMBps(large, ctx.largeBlob.size, system.caFile, system.authorizationFor?.(large)));
    f.largeCachedMBps = median(reads);
  } finally {
    ctx.wanLink();
  }
}

/** One system's cached-manifest load, gathered over the rounds of measureManifestRounds. */
interface ManifestLoad {
  readonly kind: string;
  readonly system: System;
  readonly runs: WrkResult[];
  readonly rssAfterRun: number[];
  cpuS: number;
  upstreamRequests: number;
}

/**
 * Cached manifests by tag, every system running at once, each warmed up and then measured in
 * MANIFEST_ROUNDS rounds of RUNS_PER_ROUND 4 s runs, each round visiting the systems in another
 * order (fillRoundOrder). On this VM the hit path's pace wanders by a third over an hour: one
 * system measured after another put nginx and wharf in different minutes (wharf-2t read 52 468
 * req/s against nginx's 41 995 in one run and 37 309 against 45 947 an hour later, same code);
 * rounds put every system in every part of the section. The others sit idle meanwhile. Figures
 * per system: the median run, CPU per request over its own runs, the peak RSS under them, and RSS
 * growth over its runs from the fourth on (a leak climbs run after run).
 */
async function measureManifestRounds(systems: ReadonlyArray<{ kind: string; system: System }>, origin: Context['origin'], results: Map<string, Figures>): Promise<void> {
  const paths = Array.from({ length: TAGS }, (_, i) => `/v2/bench/tiny/manifests/t${i}`);
  const loads: ManifestLoad[] = [];
  for (const { kind, system } of systems) {
    log(`${kind}: warming up for the manifest rounds`);
    loads.push({ kind, system, runs: [], rssAfterRun: [], cpuS: 0, upstreamRequests: 0 });
    for (let round = 0; round < 2; round++) {
      for (const p of paths) {
        const res = await request(`${system.url}${p}`, { dispatcher: system.dispatcher, headers: { accept: MANIFEST_ACCEPT } });
        await res.body.dump();
      }
    }
    // A JIT-compiled server needs a few seconds of traffic to reach its steady pace.
    await wrkRps(system.url, paths, 3, system.authorizationFor?.(paths[0]!));
    resetPeakRss(system.pids());
  }
  for (let round = 1; round <= MANIFEST_ROUNDS; round++) {
    log(`cached manifests by tag, wrk 64 connections: round ${round} of ${MANIFEST_ROUNDS} (${fillRoundOrder(loads, round).map((l) => l.kind).join(', ')})`);
    for (const load of fillRoundOrder(loads, round)) {
      const pids = load.system.pids();
      await origin.registry.settleLog();
      const logBefore = origin.registry.requestLog().length;
      const cpuBefore = cpuSeconds(pids);
      for (let i = 0; i < RUNS_PER_ROUND; i++) {
        load.runs.push(await wrkRps(load.system.url, paths, MANIFEST_RUN_S, load.system.authorizationFor?.(paths[0]!)));
        load.rssAfterRun.push(rssMB(pids));
      }
      load.cpuS += cpuSeconds(pids) - cpuBefore;
      await origin.registry.settleLog();
      load.upstreamRequests += origin.registry.requestLog().length - logBefore;
    }
  }
  for (const load of loads) {
    const f = results.get(load.kind)!;
    f.manifestCpuUsPerRequest = (load.cpuS * 1e6) / load.runs.reduce((sum, r) => sum + r.requests, 0);
    f.manifestRssMB = peakRssMB(load.system.pids());
    // From the fourth run on: the first runs still grow (optimised code, buffer pools, each
    // isolate's heap sizing itself) and then stay; a leak keeps climbing run after run.
    f.manifestRssCreepMB = slope(load.rssAfterRun.slice(CREEP_FROM_RUN - 1));
    const w = [...load.runs].sort((a, b) => a.rps - b.rps)[Math.floor(load.runs.length / 2)]!;
    f.manifestRps = w.rps;
    f.manifestP50Ms = w.p50Ms;
    f.manifestP99Ms = w.p99Ms;
    f.manifestErrors = load.runs.reduce((sum, r) => sum + r.errors, 0);
    f.manifestUpstreamRequests = load.upstreamRequests;
  }
}

function renderTable(direct: Figures, results: Map<string, Figures>, mediumBytes: number): string {
  const systems = [...results.keys()];
  const get = (s: string, k: string) => results.get(s)?.[k];
  const fmt = (v: number | undefined, digits = 2) => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits));
  const rows: Array<[string, string, (s: string) => string]> = [
    ['cold pull, 95 MiB image, s', `direct ${fmt(direct.pullS)}`, (s) => fmt(get(s, 'coldPullS'))],
    ['upstream MB for that pull', `image ${(mediumBytes / 1e6).toFixed(1)}`, (s) => fmt(get(s, 'coldPullUpstreamMB'), 1)],
    [`herd: ${HERD_CLIENTS} clients, one uncached 60 MiB blob, wall s`, `one fetch ${fmt(direct.oneFetchS)}`, (s) => fmt(get(s, 'herdWallS'))],
    ['herd: upstream GETs', '1', (s) => fmt(get(s, 'herdUpstreamGets'), 0)],
    ['herd: complete and correct', String(HERD_CLIENTS), (s) => fmt(get(s, 'herdOk'), 0)],
    ['herd: slowest time to first byte, s', '', (s) => fmt(get(s, 'herdSlowestFirstByteS'), 3)],
    ['herd: peak RSS, MB', '', (s) => fmt(get(s, 'herdRssMB'), 0)],
    [`cold fill, straight from the origin, MB/s (median of ${FILL_ROUNDS})`, '', (s) => fmt(get(s, 'coldFillMBps'), 0)],
    ['... slowest - fastest of those, MB/s', '', (s) => `${fmt(get(s, 'coldFillMinMBps'), 0)} - ${fmt(get(s, 'coldFillMaxMBps'), 0)}`],
    ['... blob on the shared S3 store after, s', '', (s) => fmt(get(s, 'coldFillSharedS'), 2)],
    ['cached 500 MiB blob, one stream, MB/s', '', (s) => fmt(get(s, 'largeCachedMBps'), 0)],
    ['cached manifest by tag, 64 conns, req/s', '', (s) => fmt(get(s, 'manifestRps'), 0)],
    ['... p50 / p99 ms', '', (s) => `${fmt(get(s, 'manifestP50Ms'))} / ${fmt(get(s, 'manifestP99Ms'))}`],
    ['... errors / upstream requests', '', (s) => `${fmt(get(s, 'manifestErrors'), 0)} / ${fmt(get(s, 'manifestUpstreamRequests'), 0)}`],
    ['... CPU per request, µs (all threads)', '', (s) => fmt(get(s, 'manifestCpuUsPerRequest'), 1)],
    ['... peak RSS under that load, MB', '', (s) => fmt(get(s, 'manifestRssMB'), 0)],
    [`... RSS growth per ${MANIFEST_RUN_S} s run (slope over runs ${CREEP_FROM_RUN} to ${MANIFEST_RUNS}), MB`, '', (s) => fmt(get(s, 'manifestRssCreepMB'), 1)],
  ];
  const lines = [
    `# wharf benchmark, ${new Date().toISOString()}, ${hostname()}, scale ${scale}`,
    '',
    `| figure | reference | ${systems.join(' | ')} |`,
    `|---|---|${systems.map(() => '---').join('|')}|`,
    ...rows.map(([name, ref, cell]) => `| ${name} | ${ref} | ${systems.map(cell).join(' | ')} |`),
    '',
    ...targets(direct, results),
    ...variantCost(results),
    '',
  ];
  return lines.join('\n');
}

/** wharf's ratios against its targets (issues 6 and 16), for each wharf configuration measured. */
function targets(direct: Figures, results: Map<string, Figures>): string[] {
  const n = results.get('nginx');
  const line = (name: string, value: number | undefined, target: string, ok: boolean | undefined) =>
    `- ${name}: ${value === undefined || Number.isNaN(value) ? '–' : value.toFixed(2)} (target ${target})${ok === undefined ? '' : ok ? ' ok' : ' MISSED'}`;
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a / b);
  const lines: string[] = [];
  const registry = results.get('registry');
  const bare = results.get('node-bare');
  for (const [kind, w] of results) {
    if (!kind.startsWith('wharf')) continue;
    const redis = kind.startsWith('wharf-redis');
    const twoThreads = kind.endsWith('-2t');
    const coldRatio = ratio(w.coldPullS, direct.pullS);
    const herdRatio = ratio(w.herdWallS, direct.oneFetchS);
    const rpsRatio = ratio(w.manifestRps, n?.manifestRps);
    const largeRatio = ratio(w.largeCachedMBps, n?.largeCachedMBps);
    const fillRatio = ratio(w.coldFillMBps, registry?.coldFillMBps);
    const cpuRatio = ratio(w.manifestCpuUsPerRequest, bare?.manifestCpuUsPerRequest);
    // The access log's memory: the same load with the log off (wharf, wharf-2t) beside it.
    const unlogged = kind.startsWith('wharf-log') ? results.get(kind.replace('-log', '')) : undefined;
    const logRssRatio = ratio(w.manifestRssMB, unlogged?.manifestRssMB);
    const rpsTarget = redis ? 0.6 : twoThreads ? 0.9 : 0.75;
    // The memory targets are for the default configuration: wharf-s3 also holds the AWS SDK.
    const rssTarget = kind === 'wharf-s3' ? undefined : twoThreads ? 150 : 96;
    lines.push(
      `${kind} against its targets:`,
      line('cold pull / direct', coldRatio, '≤ 1.05', coldRatio === undefined ? undefined : coldRatio <= 1.05),
      line('herd wall / one fetch', herdRatio, '≤ 1.3, 1 upstream GET', herdRatio === undefined ? undefined : herdRatio <= 1.3 && w.herdUpstreamGets === 1),
      line('herd slowest first byte, s', w.herdSlowestFirstByteS, '≤ 1', w.herdSlowestFirstByteS === undefined ? undefined : w.herdSlowestFirstByteS <= 1),
      line(`manifest req/s / nginx (${redis ? 'Redis' : 'embedded'} store)`, rpsRatio, `≥ ${rpsTarget}${redis ? '' : ', p99 ≤ 15 ms'}`, rpsRatio === undefined ? undefined : rpsRatio >= rpsTarget && (redis || (w.manifestP99Ms ?? Infinity) <= 15)),
      line('manifest CPU per request / bare node:http', cpuRatio, '≤ 1.3', cpuRatio === undefined ? undefined : cpuRatio <= 1.3),
      ...(unlogged ? [line(`manifest-load RSS / the same with the log off (${kind.replace('-log', '')})`, logRssRatio, '≤ 1.2', logRssRatio === undefined ? undefined : logRssRatio <= 1.2)] : []),
      line('manifest-load RSS growth per run, MB', w.manifestRssCreepMB, '≤ 0.5', w.manifestRssCreepMB === undefined ? undefined : w.manifestRssCreepMB <= 0.5),
      line('cached large blob / nginx', largeRatio, '≥ 1.0', largeRatio === undefined ? undefined : largeRatio >= 1.0),
      line('cold fill / registry', fillRatio, '≥ 0.9', fillRatio === undefined ? undefined : fillRatio >= 0.9),
      line('herd peak RSS MB', w.herdRssMB, rssTarget === undefined ? 'none: the AWS SDK is loaded' : `≤ ${rssTarget}`, w.herdRssMB === undefined || rssTarget === undefined ? undefined : w.herdRssMB <= rssTarget),
      '',
    );
  }
  return lines;
}

/** What a variant costs: each wharf-tls / wharf-auth system against the same wharf without it, when both ran. */
function variantCost(results: Map<string, Figures>): string[] {
  const variants = [
    { tag: '-tls', what: 'HTTPS: no sendfile, bytes pass through OpenSSL', rpsTarget: undefined },
    { tag: '-auth', what: 'auth on, every request bearing a wharf token', rpsTarget: 0.85 },
  ];
  const lines: string[] = [];
  for (const [kind, with_] of results) {
    for (const { tag, what, rpsTarget } of variants) {
      const plain = results.get(kind.replace(tag, ''));
      if (!kind.includes(tag) || !plain) continue;
      const pair = (key: string, unit: string, target?: number) => {
        const [t, p] = [with_[key], plain[key]];
        if (t === undefined || p === undefined) return '–';
        const verdict = target === undefined ? '' : t / p >= target ? ` (target ≥ ${target}) ok` : ` (target ≥ ${target}) MISSED`;
        return `${(t / p).toFixed(2)} (${t.toFixed(0)} against ${p.toFixed(0)} ${unit})${verdict}`;
      };
      lines.push(
        `${kind} against ${kind.replace(tag, '')} (${what}):`,
        `- cached 500 MiB blob, one stream: ${pair('largeCachedMBps', 'MB/s')}`,
        `- cached manifest by tag, 64 conns: ${pair('manifestRps', 'req/s', rpsTarget)}`,
        '',
      );
    }
  }
  return lines;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
