// A private dockerd (Debian's docker.io, 20.10) as root: its own data root, exec root, pidfile,
// unix socket and daemon.json in a temp dir, no iptables, no bridge, the vfs storage driver (no
// overlayfs in a sandbox), so `docker login` and `docker pull` run exactly as on a build host.
// What it must touch outside its dir it touches as little as it can and puts back:
// /etc/docker/certs.d/<host:port>/ca.crt (how dockerd trusts a registry's CA; there is no flag)
// and /etc/docker/key.json (dockerd 20.10 writes it on start; removed if it was not there).
// Registry traffic to anything but 127.0.0.1 goes to a proxy on 127.0.0.1 that refuses every
// connection, so a fallback to Docker Hub (dockerd falls back from a failing mirror) fails at
// once and is counted instead of leaving the machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { makeTempDir } from './temp-dir.ts';
import { run, type RunResult } from './run.ts';

const DOCKERD = '/usr/sbin/dockerd';
// The CLI of the same package: not whatever `docker` comes first on PATH.
const DOCKER = '/usr/bin/docker';
const ETC_DOCKER = '/etc/docker';
const CERTS_D = join(ETC_DOCKER, 'certs.d');
const KEY_JSON = join(ETC_DOCKER, 'key.json');

export interface DockerdOptions {
  /** daemon.json's content (registry-mirrors, say). */
  daemonJson?: Record<string, unknown>;
  /** Registries (host:port) whose certificates dockerd checks against this CA file. */
  trust?: ReadonlyArray<{ host: string; caFile: string }>;
}

export interface Dockerd {
  readonly pid: number;
  /** The CLI's own config dir (config.json with the logins). */
  readonly cliConfigDir: string;
  /** The docker CLI against this daemon; rejects with the exit status and stderr on failure. */
  docker(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Connections dockerd tried to open to anything but 127.0.0.1 (all refused). */
  outsideConnections(): number;
  /** The daemon's log so far (the last 64 KiB). */
  log(): string;
  stop(): Promise<void>;
}

export async function startDockerd(opts: DockerdOptions = {}): Promise<Dockerd> {
  const dir = await makeTempDir('wharf-dockerd-');
  const socket = join(dir.path, 'docker.sock');
  const cliConfigDir = join(dir.path, 'cli');
  const daemonJson = join(dir.path, 'daemon.json');
  const undo: Array<() => Promise<void>> = [() => dir.cleanup()];
  const cleanup = async () => {
    // Last registered, first undone; each step once, whatever the others do.
    for (let step = undo.pop(); step; step = undo.pop()) await step().catch(() => undefined);
  };

  let outside = 0;
  let child: ChildProcess | undefined;
  let log = '';
  try {
    const hadEtcDocker = existsSync(ETC_DOCKER);
    const hadCertsD = existsSync(CERTS_D);
    const hadKey = existsSync(KEY_JSON);
    if (!hadEtcDocker) undo.push(() => rmdir(ETC_DOCKER)); // only if empty again
    if (!hadKey) undo.push(() => rm(KEY_JSON, { force: true }));
    if (!hadCertsD) undo.push(() => rmdir(CERTS_D));
    for (const { host, caFile } of opts.trust ?? []) {
      const hostDir = join(CERTS_D, host);
      if (existsSync(hostDir)) throw new Error(`${hostDir} exists already; not overwriting another's trust`);
      await mkdir(hostDir, { recursive: true });
      undo.push(() => rm(hostDir, { recursive: true, force: true }));
      await copyFile(caFile, join(hostDir, 'ca.crt'));
    }

    const proxy = createServer((s) => {
      outside++;
      s.destroy();
    });
    await new Promise<void>((resolve, reject) => proxy.once('error', reject).listen(0, '127.0.0.1', resolve));
    undo.push(() => closeServer(proxy));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;

    await mkdir(cliConfigDir);
    await writeFile(daemonJson, JSON.stringify(opts.daemonJson ?? {}));
    const args = [
      '--iptables=false', '--ip6tables=false', '--bridge=none', '--storage-driver=vfs',
      '--data-root', join(dir.path, 'data'), '--exec-root', join(dir.path, 'exec'),
      '--pidfile', join(dir.path, 'docker.pid'), '-H', `unix://${socket}`, '--config-file', daemonJson,
    ];
    const env = { ...process.env, HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl, NO_PROXY: '127.0.0.1', http_proxy: proxyUrl, https_proxy: proxyUrl, no_proxy: '127.0.0.1' };
    const started = spawn(DOCKERD, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    child = started;
    // Registered before anything can fail: the daemon (and the containerd it starts) go first.
    undo.push(() => stopTree(started, dir.path));
    started.stderr?.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-65536)));
    await waitForPing(socket, started, () => log);
  } catch (err) {
    await cleanup();
    throw err;
  }
  const daemon = child;

  return {
    pid: daemon.pid!,
    cliConfigDir,
    docker: (args, o = {}) => runDocker(args, { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: cliConfigDir }, o.input, o.timeoutMs ?? 120_000),
    outsideConnections: () => outside,
    log: () => log,
    stop: cleanup,
  };
}

function runDocker(args: readonly string[], env: Record<string, string>, input: string | undefined, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // No /usr/bin on the CLI's PATH: with a docker-credential-secretservice or -pass there
    // (golang-docker-credential-helpers, which the credential-helper tests use), the CLI would
    // pick it as its store and `docker login` would need a keyring. The CLI itself needs no PATH.
    const child = spawn(DOCKER, args, { env: { ...process.env, PATH: '/usr/local/sbin:/usr/sbin:/sbin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`docker ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${stderr}${stdout}`));
    });
    child.stdin.end(input ?? '');
  });
}

async function waitForPing(socket: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dockerd exited at start:\n${log()}`);
    if (await ping(socket)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`dockerd did not answer on ${socket} within 30 s:\n${log()}`);
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * SIGTERM to dockerd, SIGKILL after 20 s; then the processes it started (its containerd, any
 * shim), found before the signal as its descendants whose command line names our dir, get the
 * same; then whatever is still mounted under the dir is unmounted.
 */
async function stopTree(child: ChildProcess, dirPath: string): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const descendants = await descendantsOf(pid, dirPath);
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
  for (const p of descendants) await stopPid(p, dirPath);
  const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '');
  for (const m of mounts.filter((m) => m.startsWith(`${dirPath}/`)).reverse()) await run('umount', ['-l', m]).catch(() => undefined);
}

async function descendantsOf(pid: number, dirPath: string): Promise<number[]> {
  const found: number[] = [];
  const walk = async (parent: number) => {
    const { stdout } = await run('pgrep', ['-P', String(parent)]).catch(() => ({ stdout: '' }));
    for (const p of stdout.split('\n').filter(Boolean).map(Number)) {
      if ((await cmdline(p)).includes(dirPath)) found.push(p);
      await walk(p);
    }
  };
  await walk(pid);
  return found;
}

async function cmdline(pid: number): Promise<string> {
  return readFile(`/proc/${pid}/cmdline`, 'utf8').then((s) => s.replaceAll('\0', ' '), () => '');
}

/** Waits up to 10 s for a process to go, then SIGKILLs it; only while it is still ours. */
async function stopPid(pid: number, dirPath: string): Promise<void> {
  const ours = async () => (await cmdline(pid)).includes(dirPath) && !(await zombie(pid));
  const deadline = Date.now() + 10_000;
  while (await ours()) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function zombie(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat === '' || / Z /.test(stat.slice(stat.lastIndexOf(')')));
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Names in /etc/docker/certs.d now: a test can check it left nothing behind. */
export async function certsDirEntries(): Promise<string[]> {
  return readdir(CERTS_D).catch(() => []);
}
