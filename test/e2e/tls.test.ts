// The HTTPS listener (tls.listen) in front of the real reference registry, with threads: 1 and
// 2, and real clients: curl trusting the test CA, skopeo with a certs.d directory, and Node's
// TLS client for what the wire says (ALPN, protocol versions). Cached blobs go out with
// sendfile on plain sockets only; over TLS they must stream, cached or still being filled.
import { connect, type ConnectionOptions } from 'node:tls';
import { mkdir, copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, sha256 } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startTcpFaults, type TcpFaults } from '../support/tcp-faults.ts';
import { createTestCa, type TestCa } from '../support/test-ca.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { run } from '../support/run.ts';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const hello = makeImage({ name: 'tls-hello', files: { 'hello.txt': 'hello over TLS\n' }, extraLayerBytes: 3 << 20 });
const filling = makeImage({ name: 'tls-fill', files: { 'f.txt': 'filled over TLS\n' }, extraLayerBytes: 4 << 20 });

describe.each([1, 2])('HTTPS listener (threads: %i)', (threads) => {
  let dir: TempDir;
  let ca: TestCa;
  let upstream: UpstreamRegistry;
  let link: TcpFaults;
  let wharf: TestWharf;
  let caPem: string;

  // Each request on a connection of its own, so that with two threads both serve some.
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const agent = new Agent({ pipelining: 0, connect: { ca: caPem } });
    try {
      const res = await request(`${wharf.tls!.url}${path}`, { headers: { accept: ACCEPT, ...headers }, dispatcher: agent });
      return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
    } finally {
      await agent.close();
    }
  };
  const handshake = (options: ConnectionOptions) =>
    new Promise<{ alpn: string | false | null; protocol: string | null }>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: wharf.tls!.port, ca: caPem, ...options }, () => {
        resolve({ alpn: socket.alpnProtocol, protocol: socket.getProtocol() });
        socket.end();
      });
      socket.once('error', reject);
    });

  beforeAll(async () => {
    dir = await makeTempDir('wharf-tls-');
    ca = await createTestCa(dir.path, 'wharf-test');
    caPem = await readFile(ca.certPath, 'utf8');
    // Issued by an intermediate: the certificate file holds the chain, clients trust the root.
    const server = await ca.issue('localhost', { usage: 'server', viaIntermediate: true });
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/hello', 'latest', hello);
    await pushImage(upstream.url, 'library/filling', 'latest', filling);
    link = await startTcpFaults({ host: '127.0.0.1', port: upstream.port });
    wharf = await startWharf({ threads, tls: { certFile: server.certPath, keyFile: server.keyPath }, upstreams: [{ name: 'docker.io', url: link.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await link?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('answers over HTTPS to curl trusting the CA, and plain HTTP beside it', async () => {
    const { stdout } = await run('curl', ['-sS', '--cacert', ca.certPath, '-w', ' %{http_code} %{http_version}', `${wharf.tls!.url}/v2/`]);
    expect(stdout).toBe('{} 200 1.1');
    // Not trusted without the CA: the certificate is checked, not merely present.
    await expect(run('curl', ['-sS', `${wharf.tls!.url}/v2/`])).rejects.toThrow(/certificate/);
    const plain = await fetch(`${wharf.url}/v2/`);
    expect(plain.status).toBe(200);
    expect(wharf.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('offers HTTP/1.1 only (no h2 for Go clients) and TLS 1.2 and up', async () => {
    expect((await handshake({ ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('http/1.1');
    expect((await handshake({ maxVersion: 'TLSv1.2' })).protocol).toBe('TLSv1.2');
    expect((await handshake({})).protocol).toBe('TLSv1.3');
    // The client allows TLS 1.1 at any security level; the server refuses it.
    await expect(handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).rejects.toThrow(/protocol|version/i);
  });

  it('skopeo inspects and copies over TLS, trusting the CA from a certs.d directory', async () => {
    const policy = join(dir.path, 'policy.json');
    await run('sh', ['-c', `echo '{"default":[{"type":"insecureAcceptAnything"}]}' > ${policy}`]);
    // --cert-dir: the directory of one registry (ca.crt), as in /etc/containers/certs.d/<host:port>/.
    const certDir = join(dir.path, 'cert-dir');
    await mkdir(certDir, { recursive: true });
    await copyFile(ca.certPath, join(certDir, 'ca.crt'));
    const inspected = await run('skopeo', ['--policy', policy, 'inspect', '--retry-times', '0', '--cert-dir', certDir, `docker://${wharf.tlsHost}/library/hello:latest`]);
    expect(JSON.parse(inspected.stdout).Digest).toBe(hello.manifest.digest);
    // No flags at all: the per-host certs.d directory is found by host:port, as users set it up
    // (~/.config/containers/certs.d is read before /etc/containers/certs.d).
    const home = join(dir.path, 'home');
    const hostDir = join(home, '.config', 'containers', 'certs.d', wharf.tlsHost!);
    await mkdir(hostDir, { recursive: true });
    await copyFile(ca.certPath, join(hostDir, 'ca.crt'));
    const layout = join(dir.path, 'layout');
    await run('skopeo', ['--policy', policy, 'copy', '--retry-times', '0', `docker://${wharf.tlsHost}/library/hello:latest`, `oci:${layout}:pulled`], { env: { HOME: home } });
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]?.digest).toBe(hello.manifest.digest);
    // And without the CA, skopeo refuses the certificate.
    await expect(run('skopeo', ['--policy', policy, 'inspect', '--retry-times', '0', `docker://${wharf.tlsHost}/library/hello:latest`], { env: { HOME: join(dir.path, 'nohome') } })).rejects.toThrow(/x509|certificate/);
  });

  it('streams a cached blob over TLS byte for byte, whole and in ranges', async () => {
    const layer = hello.layers.at(-1)!;
    await get(`/v2/library/hello/blobs/${layer.digest}`); // cached by the pull above already, or now
    for (let i = 0; i < 6; i++) {
      const whole = await get(`/v2/library/hello/blobs/${layer.digest}`);
      expect(whole.status).toBe(200);
      expect(whole.headers['x-wharf-cache']).toBe('hit');
      expect(sha256(whole.body)).toBe(layer.digest);
      const range = await get(`/v2/library/hello/blobs/${layer.digest}`, { range: 'bytes=1048500-2097200' });
      expect(range.status).toBe(206);
      expect(range.body.equals(layer.body.subarray(1048500, 2097201))).toBe(true);
      const tail = await get(`/v2/library/hello/blobs/${layer.digest}`, { range: 'bytes=-100' });
      expect(tail.status).toBe(206);
      expect(tail.body.equals(layer.body.subarray(layer.body.length - 100))).toBe(true);
    }
  });

  it('streams a blob still being filled over TLS byte for byte, whole and in a range', async () => {
    const layer = filling.layers.at(-1)!;
    link.setBandwidth(4 << 20); // the fill takes about a second
    try {
      const first = get(`/v2/library/filling/blobs/${layer.digest}`);
      await new Promise((r) => setTimeout(r, 150));
      const [whole, range, joined] = await Promise.all([
        first,
        get(`/v2/library/filling/blobs/${layer.digest}`, { range: 'bytes=100-3000000' }),
        get(`/v2/library/filling/blobs/${layer.digest}`),
      ]);
      expect(whole.status).toBe(200);
      expect(whole.headers['x-wharf-cache']).toBe('miss');
      expect(sha256(whole.body)).toBe(layer.digest);
      expect(range.status).toBe(206);
      expect(range.headers['x-wharf-cache']).toBe('coalesced');
      expect(range.body.equals(layer.body.subarray(100, 3000001))).toBe(true);
      expect(joined.headers['x-wharf-cache']).toBe('coalesced');
      expect(sha256(joined.body)).toBe(layer.digest);
    } finally {
      link.setBandwidth(undefined);
    }
    await upstream.settleLog();
    expect(upstream.requestLog().filter((e) => e.method === 'GET' && e.path.endsWith(layer.digest))).toHaveLength(1);
  });
});

describe('HTTPS only (listen: off)', () => {
  let dir: TempDir;
  let wharf: TestWharf;

  afterAll(async () => {
    await wharf?.stop();
    await dir?.cleanup();
  });

  it('serves on tls.listen alone', async () => {
    dir = await makeTempDir('wharf-tls-only-');
    const ca = await createTestCa(dir.path, 'only');
    const server = await ca.issue('localhost', { usage: 'server' });
    wharf = await startWharf({ listen: 'off', tls: { certFile: server.certPath, keyFile: server.keyPath }, offline: true, upstreams: [] });
    expect(wharf.url).toBe(wharf.tls!.url);
    const { stdout } = await run('curl', ['-sS', '--cacert', ca.certPath, '-w', ' %{http_code}', `${wharf.url}/v2/`]);
    expect(stdout).toBe('{} 200');
  });
});
