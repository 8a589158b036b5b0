// Starts a real redis-server on 127.0.0.1 (never any other interface), in memory only, for one
// test file. Stopped by PID: stop() for a clean exit, kill() to simulate a crash.
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort } from './free-port.ts';
import { stopProcess } from './stop-process.ts';

const REDIS_SERVER = '/usr/bin/redis-server';
const HOST = '127.0.0.1';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** SIGTERM, then resolves once the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL, without waiting: the server vanishes as in a crash. */
  kill(): void;
  /** SIGSTOP: connections stay open but nothing answers (a hung server). */
  pause(): void;
  resume(): void;
}

/** On a free port, or on `port` (to bring a killed server back where clients expect it). */
export async function startRedisServer(opts: { port?: number } = {}): Promise<RedisServer> {
  if (opts.port !== undefined) return startOn(opts.port);
  // A free port can be taken by someone else before redis binds it: try a few.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOn(await freePort());
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function startOn(port: number): Promise<RedisServer> {
  const child = spawn(REDIS_SERVER, ['--save', '', '--appendonly', 'no', '--repl-diskless-load', 'swapdb', '--bind', HOST, '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  spawnError.catch(() => undefined); // observed through the race below
  const pid = child.pid;
  try {
    if (pid === undefined) await spawnError;
    await Promise.race([
      waitForPong(port, 10_000),
      exited.then(() => Promise.reject(new Error(`redis-server exited before answering:\n${output}`))),
      spawnError,
    ]);
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
  return {
    url: `redis://${HOST}:${port}`,
    port,
    pid: pid!,
    stop: () => stopProcess(child),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
  };
}

async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ping(port)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: HOST, port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}
