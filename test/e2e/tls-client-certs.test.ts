// Client certificates (tls.clientCaFile): a certificate from that CA is an identity, named in
// the access log line with the client's address; one from another CA is refused at the
// handshake, whether certificates are optional or required; with requireClientCert a client
// without one is refused too. With threads: 2 the main thread logs requests a hit thread handed
// over with the client the hit thread saw, never its own loopback hop, and no client can pass
// itself off as another with the headers the threads use between them. Clients connect from
// 127.0.0.2 (servers stay on 127.0.0.1), so the client's own address is told apart from the hop's.
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/test-ca.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { LogLines } from '../support/log-lines.ts';
import { run } from '../support/run.ts';

const CLIENT_ADDRESS = '127.0.0.2';
const TAG_LIST = '/v2/library/hello/tags/list'; // always answered by the main thread, which logs it
const image = makeImage({ name: 'tls-client-certs', files: { 'c.txt': 'client certificates\n' } });

describe.each([1, 2])('TLS client certificates (threads: %i)', (threads) => {
  let dir: TempDir;
  let trusted: TestCa;
  let runner: IssuedCertificate;
  let stranger: IssuedCertificate;
  let upstream: UpstreamRegistry;
  let optional: TestWharf;
  let required: TestWharf;
  const optionalLogs = new LogLines();
  const requiredLogs = new LogLines();
  let ids = 0;

  /** curl from 127.0.0.2; resolves with the status and the request id the access line carries. */
  const curl = async (wharf: TestWharf, opts: { cert?: IssuedCertificate; headers?: string[]; plain?: boolean } = {}) => {
    const reqId = `tls-client-${threads}-${++ids}`;
    const args = ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--interface', CLIENT_ADDRESS, '--cacert', trusted.certPath, '-H', `X-Request-Id: ${reqId}`];
    if (opts.cert) args.push('--cert', opts.cert.certPath, '--key', opts.cert.keyPath);
    for (const h of opts.headers ?? []) args.push('-H', h);
    args.push(`${opts.plain ? wharf.url : wharf.tls!.url}${TAG_LIST}`);
    const { stdout } = await run('curl', args);
    return { status: Number(stdout), reqId };
  };
  const accessLine = (logs: LogLines, reqId: string) => logs.waitFor((l) => l.msg === 'request' && l.reqId === reqId);

  beforeAll(async () => {
    dir = await makeTempDir('wharf-tls-client-');
    const other = await createTestCa(dir.path, 'other');
    trusted = await createTestCa(dir.path, 'trusted');
    const server = await trusted.issue('localhost', { usage: 'server' });
    runner = await trusted.issue('ci-runner', { usage: 'client' });
    stranger = await other.issue('stranger', { usage: 'client' });
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/hello', 'latest', image);
    const tls = { certFile: server.certPath, keyFile: server.keyPath, clientCaFile: trusted.certPath };
    const common = { threads, logLevel: 'info', upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] };
    optional = await startWharf({ ...common, logDestination: optionalLogs, tls });
    required = await startWharf({ ...common, logDestination: requiredLogs, tls: { ...tls, requireClientCert: true } });
  });

  afterAll(async () => {
    await optional?.stop();
    await required?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('optional: a certificate from the CA names the client, none is anonymous, one from another CA is refused', async () => {
    const known = await curl(optional, { cert: runner });
    expect(known.status).toBe(200);
    expect(await accessLine(optionalLogs, known.reqId)).toMatchObject({ status: 200, client: CLIENT_ADDRESS, clientCN: 'ci-runner' });

    const anonymous = await curl(optional);
    expect(anonymous.status).toBe(200);
    const line = await accessLine(optionalLogs, anonymous.reqId);
    expect(line).toMatchObject({ client: CLIENT_ADDRESS });
    expect(line).not.toHaveProperty('clientCN');

    const since = optionalLogs.lines.length;
    await expect(curl(optional, { cert: stranger })).rejects.toThrow(/curl/);
    // Logged by the thread that took the connection; a hit thread's lines go to its own stdout.
    if (threads === 1) await optionalLogs.waitFor((l) => l.msg === 'TLS client certificate refused' && l.client === CLIENT_ADDRESS, { since });
    expect(optionalLogs.lines.slice(since).filter((l) => l.msg === 'request')).toEqual([]);
  });

  it('required: only a certificate from the CA gets in', async () => {
    const known = await curl(required, { cert: runner });
    expect(known.status).toBe(200);
    expect(await accessLine(requiredLogs, known.reqId)).toMatchObject({ client: CLIENT_ADDRESS, clientCN: 'ci-runner' });
    const since = requiredLogs.lines.length;
    await expect(curl(required)).rejects.toThrow(/curl/);
    await expect(curl(required, { cert: stranger })).rejects.toThrow(/curl/);
    expect(requiredLogs.lines.slice(since).filter((l) => l.msg === 'request')).toEqual([]);
  });

  it('skopeo presents the client certificate from its certs.d directory (client.cert, client.key)', async () => {
    const policy = join(dir.path, 'policy.json');
    await run('sh', ['-c', `echo '{"default":[{"type":"insecureAcceptAnything"}]}' > ${policy}`]);
    const certDir = join(dir.path, `certs-${threads}`);
    await mkdir(certDir, { recursive: true });
    await copyFile(trusted.certPath, join(certDir, 'ca.crt'));
    const inspect = () => run('skopeo', ['--policy', policy, 'inspect', '--retry-times', '0', '--raw', '--cert-dir', certDir, `docker://${required.tlsHost}/library/hello:latest`]);
    await expect(inspect()).rejects.toThrow(/skopeo/);
    await copyFile(runner.certPath, join(certDir, 'client.cert'));
    await copyFile(runner.keyPath, join(certDir, 'client.key'));
    expect(Buffer.from((await inspect()).stdout).equals(image.manifest.body)).toBe(true);
    // With two threads the hit thread may answer (and log) it itself; what the main thread logged names the runner.
    const pulls = requiredLogs.lines.filter((l) => l.msg === 'request' && typeof l.url === 'string' && l.url.endsWith('/manifests/latest'));
    for (const l of pulls) expect(l).toMatchObject({ client: '127.0.0.1', clientCN: 'ci-runner' });
  });

  it('ignores the headers hit threads use to name the client, on the public listeners', async () => {
    const forged = [
      'x-wharf-forward-secret: guessed',
      'x-wharf-client-address: 10.1.2.3',
      'x-wharf-client-cert-cn: admin',
      `x-wharf-client-cert-sha256: ${runner.fingerprint256}`,
    ];
    for (const plain of [false, true]) {
      for (let i = 0; i < 4; i++) {
        const sent = await curl(optional, { headers: forged, plain });
        expect(sent.status).toBe(200);
        const line = await accessLine(optionalLogs, sent.reqId);
        expect(line).toMatchObject({ client: CLIENT_ADDRESS });
        expect(line).not.toHaveProperty('clientCN');
      }
    }
  });

  if (threads > 1) it('the main thread logs what a hit thread handed over with the client the hit thread saw', async () => {
    const ca = await readFile(trusted.certPath, 'utf8');
    const [cert, key] = await Promise.all([readFile(runner.certPath, 'utf8'), readFile(runner.keyPath, 'utf8')]);
    const baseRequests = async () => ((await optional.deps.metrics.requests.get()).values.filter((v) => v.labels.kind === 'base').reduce((sum, v) => sum + v.value, 0));
    // GET /v2/ is answered by the thread that owns the connection: if the main thread did not
    // count it, the hit thread did, and it hands the tag list over.
    let handedOver = 0;
    for (let attempt = 0; attempt < 40 && handedOver < 3; attempt++) {
      const client = new Client(optional.tls!.url, { localAddress: CLIENT_ADDRESS, connect: { ca, cert, key } });
      try {
        const counted = await baseRequests();
        await (await client.request({ path: '/v2/', method: 'GET' })).body.dump();
        if ((await baseRequests()) !== counted) continue; // the main thread's own connection
        const reqId = `handed-over-${++ids}`;
        const res = await client.request({ path: TAG_LIST, method: 'GET', headers: { 'x-request-id': reqId } });
        await res.body.dump();
        expect(res.statusCode).toBe(200);
        expect(await accessLine(optionalLogs, reqId)).toMatchObject({ client: CLIENT_ADDRESS, clientCN: 'ci-runner' });
        handedOver++;
      } finally {
        await client.close();
      }
    }
    expect(handedOver).toBe(3);
  });
});
