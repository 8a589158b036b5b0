// The real reference registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1 as
// wharf's upstream, optionally behind Docker Hub style token auth. Its access log (stdout, one
// combined-format line per request) tells the tests exactly what wharf asked the upstream.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './free-port.ts';
import { makeTempDir } from './temp-dir.ts';
import { startTokenServer, type TokenServer } from './token-server.ts';
import { stopProcess } from './stop-process.ts';

const REGISTRY = '/usr/bin/docker-registry';
const MARKER = 'wharf-log-marker=';
// "GET /v2/library/x/manifests/1 HTTP/1.1" 200 1234
const ACCESS_LINE = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) /;

export interface RequestLogEntry {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

export interface UpstreamRegistry {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly tokenServer?: TokenServer;
  /** The registry process's PID now (it changes across a restart), for CPU readings. */
  pid(): number | undefined;
  /** Requests logged so far (path with query). Call settleLog() first to include the latest. */
  requestLog(): RequestLogEntry[];
  /** Resolves once every request finished before this call is in requestLog(). */
  settleLog(): Promise<void>;
  /** Stops the registry (by PID) and its token server, and removes the data. */
  stop(): Promise<void>;
}

export async function startUpstreamRegistry(opts: { auth?: 'none' | 'token' } = {}): Promise<UpstreamRegistry> {
  const dir = await makeTempDir('wharf-upstream-');
  const tokenServer =
    opts.auth === 'token' ? await startTokenServer({ dir: dir.path, issuer: 'wharf-test-issuer', service: 'wharf-test-registry' }) : undefined;
  const log: RequestLogEntry[] = [];
  const markersSeen = new Set<string>();
  let markers = 0;
  let child: ChildProcess | undefined;
  let port = 0;
  let configPath = '';

  const launch = async () => {
    const started = spawnRegistry(configPath, (line) => {
      const m = ACCESS_LINE.exec(line);
      if (!m) return;
      const path = m[2]!;
      const marker = path.indexOf(MARKER);
      if (marker >= 0) markersSeen.add(path.slice(marker + MARKER.length));
      else log.push({ method: m[1]!, path, status: Number(m[3]) });
    });
    child = started.child;
    await waitUntilServing(port, started);
  };

  // A free port can be taken before the registry binds it: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    configPath = join(dir.path, `config-${port}.yml`);
    await writeFile(configPath, registryConfig(join(dir.path, 'data'), port, tokenServer));
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt === 2) {
        await tokenServer?.stop();
        await dir.cleanup();
        throw err;
      }
    }
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir: join(dir.path, 'data'),
    ...(tokenServer ? { tokenServer } : {}),
    pid: () => child?.pid,
    requestLog: () => [...log],
    async settleLog() {
      const id = String(++markers);
      await fetch(`http://127.0.0.1:${port}/v2/?${MARKER}${id}`).then((r) => r.arrayBuffer());
      const deadline = Date.now() + 5000;
      while (!markersSeen.has(id)) {
        if (Date.now() > deadline) throw new Error('the registry did not log the marker request within 5 s');
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async stop() {
      if (child) await stopProcess(child);
      await tokenServer?.stop();
      await dir.cleanup();
    },
  };
}

function registryConfig(dataDir: string, port: number, tokenServer: TokenServer | undefined): string {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'error', accesslog: { disabled: false } },
    storage: { filesystem: { rootdirectory: dataDir }, delete: { enabled: true } },
    // A fixed secret: uploads started before a restart stay valid, and no warning at start.
    http: { addr: `127.0.0.1:${port}`, secret: 'wharf-test-secret' },
  };
  if (tokenServer) {
    config.auth = {
      token: { realm: tokenServer.url, service: tokenServer.service, issuer: tokenServer.issuer, rootcertbundle: tokenServer.certPath },
    };
  }
  return stringify(config);
}

interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  readonly output: () => string;
}

function spawnRegistry(configPath: string, onLine: (line: string) => void): Started {
  const child = spawn(REGISTRY, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let pending = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    lines.forEach(onLine);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-8000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (err) => (stderr += `\n${err.message}`));
  return { child, exited, output: () => stderr };
}

async function waitUntilServing(port: number, started: Started): Promise<void> {
  let exited = false;
  void started.exited.then(() => (exited = true));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`docker-registry exited at start:\n${started.output()}`);
    const answered = await fetch(`http://127.0.0.1:${port}/v2/`)
      .then(async (r) => (await r.arrayBuffer(), r.status === 200 || r.status === 401))
      .catch(() => false);
    if (answered) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopProcess(started.child);
  throw new Error(`docker-registry did not answer on port ${port} within 10 s:\n${started.output()}`);
}
