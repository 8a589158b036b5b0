// `npm run bench:auth`: what auth costs on cached manifests, measured so that the machine's own
// drift cannot decide it. wharf and wharf-auth (and their threads: 2 forms) run side by side on
// the same origin, and wrk runs alternate between them, each against each, several rounds; the
// medians and their ratio are printed. A second pair sends the plain wharf a header as long as the
// token, which tells wharf's own work apart from the token's bytes on the wire.
//
// Environment: BENCH_ROUNDS (default 5), BENCH_SECONDS per wrk run (default 5). Loopback only.
import { startOrigin } from './origin.ts';
import { startSystem, type SystemKind } from './systems.ts';
import { median, warmManifests, wrkRps } from './measure.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const TAGS = 50;
const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

async function main(): Promise<void> {
  const origin = await startOrigin();
  for (let i = 0; i < TAGS; i++) await origin.image('bench/tiny', `t${i}`, [1024 + i]);
  const paths = Array.from({ length: TAGS }, (_, i) => `/v2/bench/tiny/manifests/t${i}`);
  const lines: string[] = [`# auth against plain wharf, cached manifests by tag, wrk 64 connections, ${ROUNDS} alternating rounds of ${SECONDS} s`, ''];
  try {
    for (const [plainKind, authKind] of [['wharf', 'wharf-auth'], ['wharf-2t', 'wharf-auth-2t']] as Array<[SystemKind, SystemKind]>) {
      const plain = await startSystem(plainKind, origin.registry.url);
      const auth = await startSystem(authKind, origin.registry.url);
      try {
        const token = auth.authorizationFor?.(paths[0]!);
        if (!token) throw new Error(`${authKind} has no token`);
        for (const system of [plain, auth]) await warmManifests(system, paths);
        // A warm-up under load for both (the JIT needs a few seconds), then alternating rounds.
        await wrkRps(plain.url, paths, 3);
        await wrkRps(auth.url, paths, 3, token);
        const runs = { plain: [] as number[], padded: [] as number[], auth: [] as number[] };
        for (let round = 0; round < ROUNDS; round++) {
          log(`${plainKind} / ${authKind}: round ${round + 1} of ${ROUNDS}`);
          runs.plain.push((await wrkRps(plain.url, paths, SECONDS)).rps);
          runs.auth.push((await wrkRps(auth.url, paths, SECONDS, token)).rps);
          // The token's bytes to a wharf that ignores them: an unknown header of the same length.
          runs.padded.push((await wrkRps(plain.url, paths, SECONDS, undefined, { 'X-Pad': 'p'.repeat(token.length + 'Authorization: '.length - 'X-Pad: '.length) })).rps);
        }
        const [p, a, d] = [median(runs.plain), median(runs.auth), median(runs.padded)];
        lines.push(
          `${authKind} against ${plainKind}:`,
          `- req/s, median of ${ROUNDS}: ${plainKind} ${p.toFixed(0)} (runs ${runs.plain.map((r) => r.toFixed(0)).join(', ')}), ${authKind} ${a.toFixed(0)} (runs ${runs.auth.map((r) => r.toFixed(0)).join(', ')})`,
          `- auth / plain: ${(a / p).toFixed(2)} (target ≥ 0.85) ${a / p >= 0.85 ? 'ok' : 'MISSED'}`,
          `- auth / plain with a header as long as the token (${token.length} bytes): ${(a / d).toFixed(2)} (plain with it: ${d.toFixed(0)} req/s)`,
          '',
        );
      } finally {
        await plain.stop();
        await auth.stop();
      }
    }
  } finally {
    await origin.stop();
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
