// `npm run bench:fill-cpu`: where a cold fill's CPU goes. A blob (BENCH_MIB, default 1024 MiB)
// fetched once with curl through each system (BENCH_SYSTEMS, default wharf,registry, each
// BENCH_REPS times, alternating), straight from the origin; prints MB/s and the CPU-seconds per
// GB of each thread (by name) of the system, of the origin registry and of curl, from /proc.
// On a box of a few cores those share the cores, so the sum per GB bounds the rate.
// BENCH_PERF=DIR: also records each fill, and only the fill, system-wide with `perf record -a -g`
// into DIR/<system>-<rep>.data (start wharf's Node with BENCH_WHARF_NODE_ARGS=--perf-basic-prof to
// name its JavaScript frames); `perf report --tid <pid> -i ...` then shows one thread's costs.
// With BENCH_PERF_SCHED=1 as well it records the scheduler instead (`perf sched record`).
// Needs docker-registry and curl (Debian packages). Loopback only.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { startOrigin } from './origin.ts';
import { startSystem, type SystemKind } from './systems.ts';
import { cpuSeconds, statCpuSeconds, warmPagePool } from './measure.ts';

const MiB = 1 << 20;
const size = Number(process.env.BENCH_MIB ?? 1024) * MiB;
const reps = Number(process.env.BENCH_REPS ?? 2);
const kinds = (process.env.BENCH_SYSTEMS ?? 'wharf,registry').split(',') as SystemKind[];
const perfDir = process.env.BENCH_PERF;
/** BENCH_IDLE_S: seconds the machine sits idle before each fill (default 0). */
const idleS = Number(process.env.BENCH_IDLE_S ?? 0);

/** perf recording the whole machine until stopped; undefined without BENCH_PERF. */
async function startPerf(name: string): Promise<(() => Promise<void>) | undefined> {
  if (!perfDir) return undefined;
  const out = join(perfDir, `${name}.data`);
  // BENCH_PERF_SCHED=1: the scheduler's switches and wake-ups instead of samples, for
  // `perf sched timehist -i ...` (who waited on whom while a core sat idle).
  const args = process.env.BENCH_PERF_SCHED ? ['sched', 'record', '-o', out] : ['record', '-a', '-g', '-F', '1999', '-o', out];
  const perf = spawn('perf', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((resolve) => perf.once('exit', resolve));
  // perf needs a moment to open its events before the fill starts.
  await new Promise((resolve) => setTimeout(resolve, 500));
  return async () => {
    perf.kill('SIGINT');
    await exited;
  };
}

/** Busy and elapsed jiffies of the whole machine (all cores), from /proc/stat's first line. */
function machineJiffies(): { busy: number; steal: number; all: number } {
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is in user already.
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const all = fields.reduce((a, b) => a + b, 0);
  const steal = fields[7]!;
  return { busy: all - fields[3]! - fields[4]! - steal, steal, all };
}

/** CPU seconds of each thread name of one process. */
function threadCpuSeconds(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.set(name, (out.get(name) ?? 0) + statCpuSeconds(`/proc/${pid}/task/${tid}/stat`));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

if (perfDir) mkdirSync(perfDir, { recursive: true });
const origin = await startOrigin();
try {
  const blob = await origin.blob('bench/fill', 'fill', size);
  const gb = size / 1e9;
  for (let rep = 0; rep < reps; rep++) {
    for (const kind of kinds) {
      const system = await startSystem(kind, origin.registry.url);
      try {
        // Idle first, then the page pool: idle pages go back to the host and cost a fault each again.
        if (idleS > 0) await new Promise((resolve) => setTimeout(resolve, idleS * 1000));
        warmPagePool(2 * size);
        const [pid] = system.pids();
        const before = threadCpuSeconds(pid!);
        const originPid = origin.registry.pid()!;
        const originBefore = cpuSeconds([originPid]);
        const stopPerf = await startPerf(`${kind}-${rep + 1}`);
        const machineBefore = machineJiffies();
        const curl = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total} %{time_starttransfer}', `${system.url}/v2/bench/fill/blobs/${blob.digest}`]);
        let out = '';
        let curlS = 0;
        curl.stdout.on('data', (d: Buffer) => (out += d.toString()));
        // curl's own CPU, read while it runs (0 once it is gone, so the last reading is kept).
        const poll = setInterval(() => (curlS = Math.max(curlS, cpuSeconds([curl.pid!]))), 20);
        await new Promise((resolve) => curl.once('exit', resolve));
        clearInterval(poll);
        const machineAfter = machineJiffies();
        await stopPerf?.();
        const [code, bytes, seconds, firstByteS] = out.trim().split(' ').map(Number);
        if (code !== 200 || bytes !== size) throw new Error(`${kind}: HTTP ${code}, ${bytes} of ${size} bytes`);
        const threads = [...threadCpuSeconds(pid!)].map(([name, t]) => [name, (t - (before.get(name) ?? 0)) / gb] as const).filter(([, s]) => s >= 0.01);
        threads.sort((a, b) => b[1] - a[1]);
        const originS = (cpuSeconds([originPid]) - originBefore) / gb;
        const total = threads.reduce((sum, [, s]) => sum + s, 0) + originS + curlS / gb;
        // How many of the machine's cores were busy, on average, while the fill ran: below the core
        // count, the fill waited on something other than CPU (a hand-off between threads, the disk).
        const cores = availableParallelism();
        const elapsed = machineAfter.all - machineBefore.all;
        const busyCores = ((machineAfter.busy - machineBefore.busy) / elapsed) * cores;
        // Time the hypervisor ran something else on our vCPUs: neither busy for us nor idle.
        const stolenCores = ((machineAfter.steal - machineBefore.steal) / elapsed) * cores;
        console.log(
          `${kind} (${rep + 1}/${reps}): ${(bytes! / seconds! / 1e6).toFixed(0)} MB/s, first byte after ${(firstByteS! * 1000).toFixed(1)} ms; CPU-s per GB: ${threads.map(([n, s]) => `${n} ${s.toFixed(2)}`).join(', ')}; origin ${originS.toFixed(2)}; curl ${(curlS / gb).toFixed(2)}; all ${total.toFixed(2)}; cores busy ${busyCores.toFixed(2)} of ${cores} (stolen ${stolenCores.toFixed(2)})${perfDir ? `; pid ${pid}, recorded while perf ran` : ''}`,
        );
      } finally {
        await system.stop();
      }
    }
  }
} finally {
  await origin.stop();
}
