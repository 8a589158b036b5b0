// The README's "Try it" commands, run exactly as the README shows them (every code block after
// a `<!-- test/e2e/readme-commands.test.ts runs this block ... -->` marker), against a wharf this
// test starts in front of a real upstream registry. Only two things in the text are replaced:
// the wharf address 127.0.0.1:5000 by the test wharf's, and /tmp/ by a private scratch
// directory. Everything else about the clients is private through the environment, not the
// command line: HOME, the auth file, podman's storage and engine config.
//
// Nothing may leave 127.0.0.1: every client gets HTTP(S)_PROXY pointing at a trap on loopback
// (NO_PROXY=127.0.0.1, so wharf is reached directly), and the test fails
// if anything connected to the trap. A command that the README gets wrong for the installed
// tools (say, CONTAINERS_REGISTRIES_CONF for skopeo 1.9, which ignores it and dials Docker Hub)
// fails here: its pull goes to the trap instead of wharf.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { LogLines } from '../support/log-lines.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { run } from '../support/run.ts';

const REPO_ROOT = new URL('../..', import.meta.url).pathname;
const MARKER = '<!-- test/e2e/readme-commands.test.ts runs this block';
const README_WHARF = '127.0.0.1:5000';

const alpine = makeImage({ name: 'readme-alpine', files: { 'etc/alpine-release': '3.20.0\n' }, extraLayerBytes: 64 << 10 });

/** The command lines of every code block right after a marker line, in README order. */
function markedCommands(readme: string): string[] {
  const lines = readme.split('\n');
  const commands: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith(MARKER)) continue;
    if (lines[i + 1] !== '```sh') throw new Error(`README line ${i + 2}: a marked block must be a sh code block`);
    let j = i + 2;
    for (; j < lines.length && lines[j] !== '```'; j++) {
      const line = lines[j]!.trim();
      if (line !== '' && !line.startsWith('#')) commands.push(line);
    }
    i = j;
  }
  return commands;
}

interface Trap {
  readonly url: string;
  readonly attempts: string[];
  close(): Promise<void>;
}

/** A proxy that proxies nothing: it records what a client tried to reach and hangs up. */
async function startTrap(): Promise<Trap> {
  const attempts: string[] = [];
  const server: Server = createServer((socket) => {
    socket.once('data', (chunk) => {
      attempts.push(chunk.toString('latin1').split('\r\n')[0] ?? '');
      socket.destroy();
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, attempts, close: () => new Promise((r) => server.close(() => r())) };
}

describe('the README\'s Try it commands, as shown', () => {
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  let logs: LogLines;
  let trap: Trap;
  let scratch: TempDir;
  let env: NodeJS.ProcessEnv;
  let commands: string[];

  beforeAll(async () => {
    commands = markedCommands(await readFile(join(REPO_ROOT, 'README.md'), 'utf8'));
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/alpine', 'latest', alpine);
    logs = new LogLines();
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], logLevel: 'info', logDestination: logs });
    trap = await startTrap();
    scratch = await makeTempDir('wharf-readme-');
    const s = scratch.path;
    await mkdir(join(s, 'home', '.config', 'containers'), { recursive: true });
    await writeFile(join(s, 'home', '.config', 'containers', 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    await writeFile(join(s, 'auth.json'), '{}');
    await writeFile(join(s, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${s}/podman-root"\nrunroot = "${s}/podman-run"\n`);
    await writeFile(join(s, 'containers.conf'), `[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "${s}/podman-events.log"\ntmp_dir = "${s}/podman-tmp"\n`);
    env = { ...process.env };
    for (const name of ['CONTAINERS_REGISTRIES_CONF', 'ALL_PROXY', 'all_proxy', 'DOCKER_CONFIG']) delete env[name];
    Object.assign(env, {
      HOME: join(s, 'home'),
      XDG_RUNTIME_DIR: join(s, 'run'),
      XDG_CONFIG_HOME: join(s, 'home', '.config'),
      REGISTRY_AUTH_FILE: join(s, 'auth.json'),
      CONTAINERS_STORAGE_CONF: join(s, 'storage.conf'),
      CONTAINERS_CONF: join(s, 'containers.conf'),
      HTTP_PROXY: trap.url, HTTPS_PROXY: trap.url, http_proxy: trap.url, https_proxy: trap.url,
      // Loopback goes direct (curl, unlike Go, would proxy it without this).
      NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1',
    });
    await mkdir(join(s, 'run'), { recursive: true });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await trap?.close();
    await scratch?.cleanup();
  });

  it('shows a direct skopeo pull, and skopeo and podman through the shipped registries.conf', () => {
    expect(commands).toContainEqual(expect.stringMatching(/^skopeo copy .*docker:\/\/127\.0\.0\.1:5000\//));
    expect(commands).toContainEqual(expect.stringMatching(/^skopeo .*copy .*docker:\/\/docker\.io\//));
    expect(commands).toContainEqual(expect.stringMatching(/podman pull docker\.io\//));
    expect(commands).toContainEqual(expect.stringMatching(/config\/examples\/clients\/registries\.conf/));
  });

  it('runs every command for real: each client reaches only the test wharf and gets the image', { timeout: 240_000 }, async () => {
    const s = scratch.path;
    for (const shown of commands) {
      const line = shown.replaceAll(README_WHARF, wharf.host).replaceAll('/tmp/', `${s}/`);
      const since = logs.lines.length;
      const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', line], { cwd: REPO_ROOT, env, timeoutMs: 120_000 });
      expect(trap.attempts, `README command tried to leave 127.0.0.1: ${shown}`).toEqual([]);
      const tool = /^(?:\w+=\S+\s+)*(\S+)/.exec(line)![1];
      if (tool === 'sed') {
        // The generated registries.conf sends docker.io to the test wharf, nowhere else first.
        const conf = await readFile(/> (\S+)$/.exec(line)![1]!, 'utf8');
        expect(conf).toMatch(new RegExp(`prefix = "docker.io"\\s+location = "registry-1.docker.io"\\s+\\[\\[registry.mirror\\]\\]\\s+location = "${wharf.host}"`));
        continue;
      }
      // wharf served this command: requests logged since it started (the image's manifest, for a pull).
      const served = logs.lines.slice(since).filter((l) => l.msg === 'request').map((l) => String(l.url));
      expect(served.length, `wharf saw no request from: ${shown}`).toBeGreaterThan(0);
      if (tool === 'curl') {
        expect(stdout.trim()).toBe('{}');
        continue;
      }
      expect(served.some((u) => u.startsWith('/v2/library/alpine/manifests/')), `${shown}: wharf served ${served.join(' ')}`).toBe(true);
      const layout = /oci:([^:\s]+):(\S+)/.exec(line);
      if (layout) {
        const index = JSON.parse(await readFile(join(layout[1]!, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
        expect(index.manifests[0]?.digest).toBe(alpine.manifest.digest);
      }
      const podmanPull = /podman pull (\S+)/.exec(line);
      if (podmanPull) {
        const { stdout: digest } = await run('podman', ['image', 'inspect', '--format', '{{.Digest}}', podmanPull[1]!], { env });
        expect(digest.trim()).toBe(alpine.manifest.digest);
      }
    }
    // The upstream was asked for the image (the cold pull), by wharf: it is on loopback too.
    await upstream.settleLog();
    expect(upstream.requestLog().some((e) => e.method === 'GET' && e.path === `/v2/library/alpine/blobs/${alpine.layers[0]!.digest}`)).toBe(true);
  });
});
