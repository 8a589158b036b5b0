// One figure each: time a pull with skopeo, a herd of concurrent blob GETs, cached manifest
// throughput with wrk, single-stream blob throughput with curl, and a process's peak RSS.
import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { run } from '../test/support/run.ts';
import type { System } from './systems.ts';

/** What the bench's manifest requests accept, as pulling clients send it. */
export const MANIFEST_ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

/** GETs each manifest path once through the system (caching it); any answer but 200 is an error. */
export async function warmManifests(system: System, paths: readonly string[]): Promise<void> {
  for (const p of paths) {
    const res = await request(`${system.url}${p}`, { dispatcher: system.dispatcher, headers: { accept: MANIFEST_ACCEPT } });
    if (res.statusCode !== 200) throw new Error(`${system.name}: ${p} answered ${res.statusCode}`);
    await res.body.dump();
  }
}

/** creds: user:password when the registry wants them (skopeo fetches its own token). */
export async function timedPull(registryHost: string, ref: string, creds?: string): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-pull-'));
  try {
    await writeFile(join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    const started = performance.now();
    const login = creds ? ['--src-creds', creds] : [];
    await run('skopeo', ['--policy', join(dir, 'policy.json'), 'copy', '--retry-times', '0', '--src-tls-verify=false', ...login, `docker://${registryHost}/${ref}`, `dir:${join(dir, 'image')}`], {
      timeoutMs: 30 * 60_000,
    });
    return (performance.now() - started) / 1000;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface HerdResult {
  readonly wallS: number;
  readonly ok: number;
  readonly slowestFirstByteS: number;
}

/** dispatcher: for https, one that trusts the system's CA. */
export async function herd(url: string, clients: number, expectedSize: number, dispatcher?: Dispatcher): Promise<HerdResult> {
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: clients }, async () => {
      const res = await request(url, dispatcher ? { dispatcher } : {});
      let first: number | undefined;
      let size = 0;
      for await (const chunk of res.body) {
        first ??= performance.now() - started;
        size += (chunk as Buffer).length;
      }
      return { ok: res.statusCode === 200 && size === expectedSize, first: first ?? performance.now() - started };
    }),
  );
  return {
    wallS: (performance.now() - started) / 1000,
    ok: results.filter((r) => r.ok).length,
    slowestFirstByteS: Math.max(...results.map((r) => r.first)) / 1000,
  };
}

export interface WrkResult {
  readonly rps: number;
  /** Requests completed in the run. */
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

export interface WrkOptions {
  /** wrk threads (default 2). */
  readonly threads?: number;
  /** 'cycle' (default): the paths in turn; 'random': any path at each request, so no order favours an LRU. */
  readonly order?: 'cycle' | 'random';
}

/** wrk with 64 connections over the given paths in turn (or at random, options.order), with a registry client's Accept header (https too: wrk does not verify certificates). */
/** authorization: the Authorization header to send; extraHeaders: more headers, as they are. */
export async function wrkRps(baseUrl: string, paths: readonly string[], seconds = 10, authorization?: string, extraHeaders: Readonly<Record<string, string>> = {}, options: WrkOptions = {}): Promise<WrkResult> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-wrk-'));
  try {
    const lua = join(dir, 'paths.lua');
    // The paths in a file of their own: a Lua table literal of 100 000 strings is past LuaJIT's
    // limit on constants per function.
    const list = join(dir, 'paths.txt');
    writeFileSync(list, `${paths.join('\n')}\n`);
    const next = options.order === 'random' ? 'paths[math.random(#paths)]' : 'paths[i]';
    writeFileSync(
      lua,
      `local paths = {}
for line in io.lines(${JSON.stringify(list)}) do paths[#paths + 1] = line end
local i = 0
wrk.headers["Accept"] = ${JSON.stringify(MANIFEST_ACCEPT)}
${authorization ? `wrk.headers["Authorization"] = ${JSON.stringify(authorization)}\n` : ''}${Object.entries(extraHeaders).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}\n`).join('')}request = function() i = i % #paths + 1; return wrk.format("GET", ${next}) end
`,
    );
    const { stdout } = await run('wrk', [`-t${options.threads ?? 2}`, '-c64', `-d${seconds}s`, '--latency', '-s', lua, baseUrl], { timeoutMs: (seconds + 30) * 1000 });
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN);
    const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0) + Number(/Socket errors: connect (\d+)/.exec(stdout)?.[1] ?? 0);
    const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN);
    return { rps, requests, p50Ms: latencyMs(stdout, '50%'), p99Ms: latencyMs(stdout, '99%'), errors };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function latencyMs(wrkOutput: string, percentile: string): number {
  const m = new RegExp(`^\\s+${percentile}\\s+([\\d.]+)(us|ms|s)$`, 'm').exec(wrkOutput);
  if (!m) return NaN;
  const value = Number(m[1]);
  return m[2] === 'us' ? value / 1000 : m[2] === 's' ? value * 1000 : value;
}

/** One stream with curl, body discarded: MB/s (10^6 bytes). caFile: for https, the CA to trust. */
export async function blobMBps(url: string, expectedSize: number, caFile?: string, authorization?: string): Promise<number> {
  const trust = caFile ? ['--cacert', caFile] : [];
  const auth = authorization ? ['-H', `Authorization: ${authorization}`] : [];
  const { stdout } = await run('curl', ['-s', ...trust, ...auth, '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', url], { timeoutMs: 30 * 60_000 });
  const [code, size, seconds] = stdout.trim().split(' ');
  if (code !== '200' || Number(size) !== expectedSize) throw new Error(`${url}: HTTP ${code}, ${size} of ${expectedSize} bytes`);
  return Number(size) / Number(seconds) / 1e6;
}

/** Resets the peak-RSS counters of these processes (Linux clear_refs). */
export function resetPeakRss(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      // not ours to reset, or gone
    }
  }
}

/** Sum of VmHWM over these processes, in MB. */
export function peakRssMB(pids: readonly number[]): number {
  return (sumStatusKiB(pids, /VmHWM:\s+(\d+)/) * 1024) / 1e6;
}

function sumStatusKiB(pids: readonly number[], field: RegExp): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      kib += Number(field.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kib;
}

/** Sum of VmRSS over these processes now, in MB. */
export function rssMB(pids: readonly number[]): number {
  return sumStatusKiB(pids, /VmRSS:\s+(\d+)/) * 1024 / 1e6;
}

/** CPU seconds (user + system, all threads) these processes have used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + statCpuSeconds(`/proc/${pid}/stat`), 0);
}

/** CPU seconds (user + system) a /proc stat file reports: a process's, or one thread's under task/; 0 once it is gone. */
export function statCpuSeconds(statPath: string): number {
  try {
    const stat = readFileSync(statPath, 'utf8');
    // Fields after the command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = 100;

/** Least-squares slope of values against their index: growth per step, less swayed by one reading than last minus first. */
export function slope(values: readonly number[]): number {
  const n = values.length;
  const meanX = (n - 1) / 2;
  const meanY = values.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  values.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return den === 0 ? 0 : num / den;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Writes and removes a file of this size, so the page cache a fill writes next gets pages the VM
 * has backed already. On this kind of VM a page touched for the first time costs the host a
 * fault: writing a fresh 1 GiB file ran at 330-380 MB/s, the same file again after a delete at
 * 2.6-5.3 GB/s. Without this the system measured first pays for every page and the ones after
 * it reuse what it freed; with it each starts alike.
 */
export function warmPagePool(bytes: number): void {
  const path = join(tmpdir(), `wharf-bench-warm-${process.pid}`);
  const block = Buffer.alloc(4 << 20);
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < bytes; written += block.length) writeSync(fd, block);
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
}
