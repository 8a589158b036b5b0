// Certificate rotation without a restart: the files are replaced as renewal tools replace them
// (a new file renamed over the old; a Kubernetes secret mount's symlink swap), new connections
// get the new certificate on every thread, a connection opened before keeps working, and a
// key that does not match its certificate is logged and refused while the old pair stays.
import { connect, type TLSSocket } from 'node:tls';
import { copyFile, mkdir, readFile, rename, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/test-ca.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { LogLines } from '../support/log-lines.ts';

const RELOAD_WITHIN_MS = 5000;

/** One TLS connection kept open, HTTP/1.1 keep-alive requests written by hand. */
class KeptConnection {
  readonly #socket: TLSSocket;
  #buffer = Buffer.alloc(0);
  #wake: (() => void) | undefined;

  private constructor(socket: TLSSocket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
  }

  static open(port: number, ca: string[]): Promise<KeptConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca }, () => resolve(new KeptConnection(socket)));
      socket.once('error', reject);
    });
  }

  get fingerprint(): string {
    return this.#socket.getPeerCertificate().fingerprint256;
  }

  /** The status of GET path; the connection stays open for the next one. */
  async get(path: string): Promise<number> {
    this.#socket.write(`GET ${path} HTTP/1.1\r\nHost: wharf\r\n\r\n`);
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.#buffer.subarray(0, end).toString();
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (this.#buffer.length >= end + 4 + length) {
          this.#buffer = this.#buffer.subarray(end + 4 + length);
          return Number(head.split(' ')[1]);
        }
      }
      if (this.#socket.destroyed) throw new Error('the connection was closed');
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 100);
      });
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** The certificate a new connection is served (trusting both CAs, so either verifies). */
function servedFingerprint(port: number, ca: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.once('error', reject);
  });
}

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + RELOAD_WITHIN_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${RELOAD_WITHIN_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** As certbot, cert-manager's tools and `install` do: write beside, then rename over. */
async function replaceFile(target: string, source: string): Promise<void> {
  await copyFile(source, `${target}.new`);
  await rename(`${target}.new`, target);
}

describe.each([1, 2])('TLS certificate reload (threads: %i)', (threads) => {
  let dir: TempDir;
  let first: TestCa;
  let second: TestCa;
  let before: IssuedCertificate;
  let after: IssuedCertificate;
  let cas: string[];
  let wharf: TestWharf;
  const logs = new LogLines();
  const live = () => join(dir.path, 'live');

  beforeAll(async () => {
    dir = await makeTempDir('wharf-tls-reload-');
    [first, second] = await Promise.all([createTestCa(dir.path, 'first'), createTestCa(dir.path, 'second')]);
    [before, after] = await Promise.all([first.issue('localhost', { usage: 'server' }), second.issue('localhost', { usage: 'server' })]);
    cas = await Promise.all([readFile(first.certPath, 'utf8'), readFile(second.certPath, 'utf8')]);
    await mkdir(live());
    await copyFile(before.certPath, join(live(), 'tls.crt'));
    await copyFile(before.keyPath, join(live(), 'tls.key'));
    wharf = await startWharf({
      threads,
      logLevel: 'info',
      logDestination: logs,
      tls: { certFile: join(live(), 'tls.crt'), keyFile: join(live(), 'tls.key') },
      offline: true,
      upstreams: [],
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await dir?.cleanup();
  });

  it('serves a certificate from another CA to new connections once the files are replaced; an open connection keeps working', async () => {
    const port = wharf.tls!.port;
    expect(await servedFingerprint(port, cas)).toBe(before.fingerprint256);
    const kept = await KeptConnection.open(port, [cas[0]!]);
    try {
      expect(await kept.get('/v2/')).toBe(200);
      await replaceFile(join(live(), 'tls.crt'), after.certPath);
      await replaceFile(join(live(), 'tls.key'), after.keyPath);
      await eventually('the new certificate served', async () => (await servedFingerprint(port, cas)) === after.fingerprint256);
      // Every thread: the kernel spreads new connections over them.
      for (let i = 0; i < 20; i++) expect(await servedFingerprint(port, cas)).toBe(after.fingerprint256);
      expect(kept.fingerprint).toBe(before.fingerprint256);
      expect(await kept.get('/v2/')).toBe(200);
      expect(await kept.get('/healthz')).toBe(200);
    } finally {
      kept.close();
    }
    const reloaded = await logs.waitFor((l) => l.msg === 'TLS certificate reloaded');
    expect(reloaded.tls).toMatchObject({ fingerprint256: after.fingerprint256, issuer: 'CN=second root' });
  });

  it('keeps the running certificate when the new key does not match, and says which file is wrong', async () => {
    const port = wharf.tls!.port;
    const stray = await first.issue('localhost', { usage: 'server' });
    const since = logs.lines.length;
    await replaceFile(join(live(), 'tls.key'), stray.keyPath);
    const refused = await logs.waitFor((l) => l.msg === 'TLS files changed but cannot be used; serving the previous certificate', { since });
    expect(refused.problems).toEqual([expect.stringMatching(new RegExp(`^tls\\.keyFile: ${join(live(), 'tls.key')}: is not the key of the first certificate`))]);
    // Not a byte of any key in the log.
    const keyLines = (await readFile(stray.keyPath, 'utf8')).split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
    for (const line of keyLines) expect(logs.raw.join('\n')).not.toContain(line);
    for (let i = 0; i < 10; i++) expect(await servedFingerprint(port, cas)).toBe(after.fingerprint256);
    // Fixed: the matching key back, and the pair is served.
    await replaceFile(join(live(), 'tls.key'), after.keyPath);
    await replaceFile(join(live(), 'tls.crt'), stray.certPath);
    await replaceFile(join(live(), 'tls.key'), stray.keyPath);
    await eventually('the repaired pair served', async () => (await servedFingerprint(port, cas)) === stray.fingerprint256);
    for (let i = 0; i < 10; i++) expect(await servedFingerprint(port, cas)).toBe(stray.fingerprint256);
  });
});

describe('TLS certificate reload from a Kubernetes secret mount', () => {
  let dir: TempDir;
  let wharf: TestWharf;

  afterAll(async () => {
    await wharf?.stop();
    await dir?.cleanup();
  });

  it('follows the ..data symlink swap', async () => {
    dir = await makeTempDir('wharf-tls-k8s-');
    const ca = await createTestCa(dir.path, 'k8s');
    const [one, two] = await Promise.all([ca.issue('localhost', { usage: 'server' }), ca.issue('localhost', { usage: 'server' })]);
    const caPem = [await readFile(ca.certPath, 'utf8')];
    // The kubelet's layout: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/ (swapped by rename).
    const mount = join(dir.path, 'mount');
    for (const [name, cert] of [['..2026_01', one], ['..2026_02', two]] as const) {
      await mkdir(join(mount, name), { recursive: true });
      await copyFile(cert.certPath, join(mount, name, 'tls.crt'));
      await copyFile(cert.keyPath, join(mount, name, 'tls.key'));
    }
    await symlink('..2026_01', join(mount, '..data'));
    await symlink('..data/tls.crt', join(mount, 'tls.crt'));
    await symlink('..data/tls.key', join(mount, 'tls.key'));
    wharf = await startWharf({ tls: { certFile: join(mount, 'tls.crt'), keyFile: join(mount, 'tls.key') }, offline: true, upstreams: [] });
    expect(await servedFingerprint(wharf.tls!.port, caPem)).toBe(one.fingerprint256);
    await symlink('..2026_02', join(mount, '..data_tmp'));
    await rename(join(mount, '..data_tmp'), join(mount, '..data'));
    await eventually('the swapped certificate served', async () => (await servedFingerprint(wharf.tls!.port, caPem)) === two.fingerprint256);
  });
});
