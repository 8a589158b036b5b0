// `wharf` as its own process (bin/wharf.js), the way users run it: for signals, exit codes and
// crashes (kill -9) that an in-process server cannot show.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { WHARF_ENTRY as ENTRY } from './wharf-entry.ts';


export interface WharfProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly pid: number;
  /** Exit code, or null when killed by a signal. */
  readonly exited: Promise<number | null>;
  stderr(): string;
  /** Resolves with the URL from the "wharf listening" log line. */
  listening(): Promise<string>;
}

/** nodeArgs: flags for Node itself (some, such as --heap-growing-percent, NODE_OPTIONS refuses). */
export function startWharfProcess(args: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: readonly string[] = []): WharfProcess {
  const child = spawn(process.execPath, [...nodeArgs, ENTRY, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // stdout is read to its end, always: a full pipe would block wharf's logging.
  const url = new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (!line.startsWith('{')) return; // usage text, not a log line
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'wharf listening' && entry.url) resolve(entry.url);
    });
    lines.on('close', () => reject(new Error(`wharf exited before it was listening (the line needs logLevel info or lower):\n${stderr}`)));
  });
  url.catch(() => undefined); // observed through listening()
  return { child, pid: child.pid ?? -1, exited, stderr: () => stderr, listening: () => url };
}

/** Runs a short wharf command to its end (warm, gc, ...): exit code and output. */
export async function runWharfCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [ENTRY, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}
