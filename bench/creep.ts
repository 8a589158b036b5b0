// `npm run bench:creep`: whether RSS under sustained cached-manifest load levels off or keeps
// climbing. `npm run bench` reads five 5 s runs, which with two threads still sit in the climb
// while both isolates' heaps size themselves; this runs many (BENCH_RUNS, default 16) and prints
// RSS after each, with the slope over the first and the second half: a leak climbs in both,
// heap sizing only in the first. Systems: BENCH_SYSTEMS (default wharf,wharf-log,wharf-2t,wharf-log-2t).
// Needs docker-registry and wrk (Debian packages). Loopback only.
import { startOrigin } from './origin.ts';
import { startSystem, type SystemKind } from './systems.ts';
import { rssMB, slope, warmManifests, wrkRps } from './measure.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 16);
const TAGS = 50;
const kinds = (process.env.BENCH_SYSTEMS ?? 'wharf,wharf-log,wharf-2t,wharf-log-2t').split(',') as SystemKind[];
const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

const origin = await startOrigin();
try {
  for (let i = 0; i < TAGS; i++) await origin.image('bench/tiny', `t${i}`, [1024 + i]);
  const paths = Array.from({ length: TAGS }, (_, i) => `/v2/bench/tiny/manifests/t${i}`);
  const rows: string[] = [];
  for (const kind of kinds) {
    log(`${kind}: ${RUNS} runs of 5 s, cached manifests by tag, 64 connections`);
    const system = await startSystem(kind, origin.registry.url);
    try {
      await warmManifests(system, paths);
      await wrkRps(system.url, paths, 3);
      const rss: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        await wrkRps(system.url, paths, 5);
        rss.push(rssMB(system.pids()));
      }
      const half = Math.floor(RUNS / 2);
      rows.push(`| ${kind} | ${slope(rss.slice(0, half)).toFixed(2)} | ${slope(rss.slice(half)).toFixed(2)} | ${rss.map((x) => x.toFixed(0)).join(' ')} |`);
    } finally {
      await system.stop();
    }
  }
  process.stdout.write(
    [
      `# RSS under sustained load, ${new Date().toISOString()}, ${RUNS} runs of 5 s`,
      '',
      '| system | MB per run, first half | MB per run, second half | RSS after each run, MB |',
      '|---|---|---|---|',
      ...rows,
      '',
    ].join('\n'),
  );
} finally {
  await origin.stop();
}
