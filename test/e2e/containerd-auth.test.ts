// containerd (ctr, as a Kubernetes node pulls) through wharf over HTTPS with auth on: the node
// trusts the test CA from hosts.toml `ca = ...` and authenticates with a machine token in a
// static `Authorization` header, the only credential a node mirror config can carry. Without
// the header, or with a wrong token, wharf refuses and the upstream is never asked.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { createTestCa, type TestCa } from '../support/test-ca.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { startContainerd, type Containerd } from '../support/containerd.ts';
import { LogLines } from '../support/log-lines.ts';

const image = makeImage({ name: 'ctr-auth', files: { 'srv/node.txt': 'for nodes with a token\n' }, extraLayerBytes: 256 << 10 });
const other = makeImage({ name: 'ctr-auth-other', files: { 'o.txt': 'not for the node\n' } });
const NODE_TOKEN = randomBytes(32).toString('hex');
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'] as const;

describe('containerd pulls through wharf over TLS with a machine token in hosts.toml', () => {
  let dir: TempDir;
  let ca: TestCa;
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  let containerd: Containerd;
  let outside: Server;
  let outsideConnections = 0;
  const savedEnv: Partial<Record<(typeof PROXY_VARS)[number], string>> = {};
  const logs = new LogLines();

  /** A hosts dir for ghcr.io with wharf as its mirror, trusting the CA, with this header if any. */
  async function hostsDir(name: string, authorization?: string): Promise<string> {
    const root = await containerd.workDir(name);
    await mkdir(join(root, 'ghcr.io'));
    const mirror = `https://${wharf.tlsHost}`;
    const lines = [
      'server = "https://ghcr.io"',
      '',
      `[host."${mirror}"]`,
      '  capabilities = ["pull", "resolve"]',
      `  ca = "${ca.certPath}"`,
    ];
    if (authorization !== undefined) lines.push(`  [host."${mirror}".header]`, `    Authorization = "${authorization}"`);
    await writeFile(join(root, 'ghcr.io', 'hosts.toml'), `${lines.join('\n')}\n`);
    return root;
  }

  /** The message a pull that must fail failed with. */
  async function refusedPull(ref: string, dirPath: string): Promise<string> {
    const message = await containerd.pull(ref, { hostsDir: dirPath }).then(
      () => undefined,
      (err: Error) => err.message,
    );
    if (message === undefined) throw new Error(`expected ${ref} to be refused, but ctr pulled it`);
    return message;
  }

  beforeAll(async () => {
    dir = await makeTempDir('wharf-ctr-auth-');
    ca = await createTestCa(dir.path, 'ctr');
    const server = await ca.issue('127.0.0.1', { usage: 'server' });
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'acme/node-base', 'v1', image);
    await pushImage(upstream.url, 'acme/other', 'v1', other);
    wharf = await startWharf({
      logLevel: 'info',
      logDestination: logs,
      tls: { certFile: server.certPath, keyFile: server.keyPath },
      upstreams: [{ name: 'ghcr.io', url: upstream.url }],
      auth: {
        machines: { node: { sha256: createHash('sha256').update(NODE_TOKEN).digest('hex') } },
        rules: [{ repositories: ['ghcr.io/acme/node-*'], machines: ['node'] }],
        signingKeyFile: join(dir.path, 'signing-key.pem'),
      },
    });
    // ctr falls back from a refusing mirror to the server (https://ghcr.io): ctr's requests to
    // anything but 127.0.0.1 go to this proxy, which refuses them, so nothing leaves the machine.
    outside = createServer((s) => {
      outsideConnections++;
      s.destroy();
    });
    await new Promise<void>((resolve) => outside.listen(0, '127.0.0.1', resolve));
    const proxy = `http://127.0.0.1:${(outside.address() as { port: number }).port}`;
    for (const name of PROXY_VARS) {
      if (process.env[name] !== undefined) savedEnv[name] = process.env[name];
      process.env[name] = name.toLowerCase().startsWith('no_') ? '127.0.0.1' : proxy;
    }
    containerd = await startContainerd();
  });

  afterAll(async () => {
    await containerd?.stop();
    for (const name of PROXY_VARS) {
      if (savedEnv[name] === undefined) delete process.env[name];
      else process.env[name] = savedEnv[name];
    }
    await new Promise((resolve) => outside?.close(resolve) ?? resolve(undefined));
    await wharf?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('pulls with the machine token: the digest as pushed, the layers fetched through wharf as the machine', async () => {
    await upstream.settleLog();
    const since = upstream.requestLog().length;
    const pulled = await containerd.pull('ghcr.io/acme/node-base:v1', { hostsDir: await hostsDir('token', `Bearer ${NODE_TOKEN}`) });
    expect(pulled.digest).toBe(image.manifest.digest);
    await upstream.settleLog();
    const fetched = upstream.requestLog().slice(since).filter((e) => e.method === 'GET' && e.path.startsWith('/v2/acme/node-base/blobs/'));
    expect(fetched.map((e) => e.path.split('/').pop()).sort()).toEqual([image.config.digest, ...image.layers.map((l) => l.digest)].sort());
    // containerd's mirror form (?ns=ghcr.io), over TLS, identified as the machine by its header.
    const layer = await logs.waitFor((l) => l.msg === 'request' && l.url === `/v2/acme/node-base/blobs/${image.layers[1]!.digest}?ns=ghcr.io`);
    expect(layer).toMatchObject({ status: 200, identity: 'machine:node', upstream: 'ghcr.io', client: '127.0.0.1' });
    expect(outsideConnections).toBe(0);
  });

  /** ctr's last words when wharf answered the tag with this status (after its own token try). */
  const refusedWith = (status: string, tag = 'v1') => `pulling from host ${wharf.tlsHost} failed with status code [manifests ${tag}]: ${status}`;

  /** A refused pull of node-base: wharf answered nothing but errors, the upstream nothing at all. */
  async function expectRefused(hosts: string, status: string): Promise<Array<Record<string, unknown>>> {
    await upstream.settleLog();
    const since = upstream.requestLog().length;
    const linesBefore = logs.lines.length;
    const outsideBefore = outsideConnections;
    // node-base is in wharf's cache by now: only the refusal keeps it from ctr.
    expect(await refusedPull('ghcr.io/acme/node-base:v1', hosts)).toContain(refusedWith(status));
    const lines = logs.lines.slice(linesBefore).filter((l) => l.msg === 'request' && String(l.url).startsWith('/v2/acme/node-base/'));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((l) => Number(l.status) < 400)).toEqual([]);
    // Refused by the mirror, ctr tried the server itself (ghcr.io), which the proxy refused.
    expect(outsideConnections).toBeGreaterThan(outsideBefore);
    await upstream.settleLog();
    expect(upstream.requestLog().slice(since).filter((e) => e.path.includes('node-base'))).toEqual([]);
    return lines;
  }

  it('refuses a pull without the header: challenged, and the token ctr then fetches grants nothing', async () => {
    const lines = await expectRefused(await hostsDir('none'), '401 Unauthorized');
    expect(lines.every((l) => l.identity === 'anonymous')).toBe(true);
  });

  it('refuses a pull with a wrong token in the header', async () => {
    const lines = await expectRefused(await hostsDir('wrong', `Bearer ${randomBytes(32).toString('hex')}`), '401 Unauthorized');
    expect(lines.some((l) => l.identity === 'machine:node')).toBe(false);
  });

  it('gives the machine only what the rules grant it', async () => {
    await upstream.settleLog();
    const since = upstream.requestLog().length;
    // 403, not 401: wharf knows the machine, and the rules give it node-* only.
    expect(await refusedPull('ghcr.io/acme/other:v1', await hostsDir('other', `Bearer ${NODE_TOKEN}`))).toContain(refusedWith('403 Forbidden'));
    await upstream.settleLog();
    expect(upstream.requestLog().slice(since).filter((e) => e.path.includes('acme/other'))).toEqual([]);
  });
});
