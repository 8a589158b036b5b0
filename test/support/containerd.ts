// A private containerd daemon (own root, state and socket in a temp dir; no CRI, no network
// listener) so that `ctr images pull --hosts-dir` can pull through wharf as a Kubernetes node
// would: containerd's mirror resolver adds ?ns=<registry> to every request.
import { spawn } from 'node:child_process';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, type TempDir } from './temp-dir.ts';
import { run } from './run.ts';
import { stopProcess } from './stop-process.ts';

export interface PulledImage {
  readonly ref: string;
  /** The digest of what the tag resolved to (index or manifest), as containerd recorded it. */
  readonly digest: string;
}

export interface Containerd {
  readonly pid: number;
  /** A fresh directory inside this containerd's temp dir (for a hosts dir, say). */
  workDir(name: string): Promise<string>;
  pull(ref: string, opts: { hostsDir: string; platform?: string; allPlatforms?: boolean }): Promise<PulledImage>;
  stop(): Promise<void>;
}

export async function startContainerd(): Promise<Containerd> {
  const dir = await makeTempDir('wharf-containerd-');
  const socket = join(dir.path, 'containerd.sock');
  const configPath = join(dir.path, 'config.toml');
  await writeFile(configPath, configToml(dir.path, socket));
  const child = spawn('/usr/bin/containerd', ['--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid === undefined) throw new Error('containerd did not start');
  const pid = child.pid;
  try {
    await waitForSocket(socket, exited, () => log);
  } catch (err) {
    process.kill(pid, 'SIGKILL');
    await dir.cleanup();
    throw err;
  }
  const ctr = (args: string[]) => run('ctr', ['--address', socket, '--namespace', 'wharf-test', ...args], { timeoutMs: 120_000 });

  return {
    pid,
    async workDir(name) {
      const path = join(dir.path, `${name}-${Date.now()}`);
      await mkdir(path, { recursive: true });
      return path;
    },
    async pull(ref, opts) {
      // native snapshotter: unpacking works without overlayfs support in the sandbox.
      const args = ['images', 'pull', '--hosts-dir', opts.hostsDir, '--snapshotter', 'native'];
      if (opts.platform) args.push('--platform', opts.platform);
      if (opts.allPlatforms) args.push('--all-platforms');
      await ctr([...args, ref]);
      const { stdout } = await ctr(['images', 'ls']);
      const line = stdout.split('\n').find((l) => l.split(/\s+/)[0] === ref);
      const digest = line?.split(/\s+/).find((f) => f.startsWith('sha256:'));
      if (!digest) throw new Error(`containerd did not record ${ref}:\n${stdout}`);
      return { ref, digest };
    },
    async stop() {
      await stopProcess(child);
      await cleanupDir(dir);
    },
  };
}

function configToml(root: string, socket: string): string {
  return [
    'version = 2',
    `root = "${join(root, 'root')}"`,
    `state = "${join(root, 'state')}"`,
    // Only what a pull needs: no CRI plugin, no exotic snapshotters.
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
    '[grpc]',
    `  address = "${socket}"`,
    '[ttrpc]',
    `  address = "${socket}.ttrpc"`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    '',
  ].join('\n');
}

async function waitForSocket(socket: string, exited: Promise<void>, log: () => string): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`containerd exited at start:\n${log()}`);
    try {
      await access(socket);
      await run('ctr', ['--address', socket, 'version'], { timeoutMs: 5000 });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`containerd did not answer within 15 s:\n${log()}`);
}

async function cleanupDir(dir: TempDir): Promise<void> {
  // Unpacked snapshots may hold read-only files; a failure to clean a temp dir fails no test.
  await dir.cleanup().catch(() => undefined);
}
