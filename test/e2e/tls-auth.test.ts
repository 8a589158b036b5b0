// A verified client certificate as an identity the access rules name (mTLS for nodes), and a
// client that came over HTTPS pointed to an https token realm, also when a hit thread handed
// its request over. Clients connect from 127.0.0.2, so a rule on that address is the client's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/test-ca.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { run } from '../support/run.ts';

const image = makeImage({ name: 'tls-auth', files: { 't.txt': 'for certified nodes\n' } });

describe.each([1, 2])('certificates and networks as identities over HTTPS (threads: %i)', (threads) => {
  let dir: TempDir;
  let ca: TestCa;
  let node: IssuedCertificate;
  let other: IssuedCertificate;
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;

  /** curl from 127.0.0.2 over HTTPS; the status and the WWW-Authenticate header. */
  const curl = async (path: string, cert?: IssuedCertificate) => {
    const args = ['-sS', '-o', '/dev/null', '-D', '-', '-w', '%{http_code}', '--interface', '127.0.0.2', '--cacert', ca.certPath];
    if (cert) args.push('--cert', cert.certPath, '--key', cert.keyPath);
    const { stdout } = await run('curl', [...args, `${wharf.tls!.url}${path}`]);
    return { status: Number(stdout.slice(-3)), challenge: /^www-authenticate: (.*)$/im.exec(stdout)?.[1]?.trim() };
  };

  beforeAll(async () => {
    dir = await makeTempDir('wharf-tls-auth-');
    ca = await createTestCa(dir.path, 'nodes');
    const server = await ca.issue('localhost', { usage: 'server' });
    node = await ca.issue('node-1', { usage: 'client' });
    other = await ca.issue('node-2', { usage: 'client' });
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/base', 'v1', image);
    await pushImage(upstream.url, 'team/tool', 'v1', image);
    wharf = await startWharf({
      threads,
      tls: { certFile: server.certPath, keyFile: server.keyPath, clientCaFile: ca.certPath },
      upstreams: [{ name: 'docker.io', url: upstream.url, default: true }],
      auth: {
        rules: [
          { repositories: ['docker.io/team/**'], certificates: ['node-1'] },
          { repositories: ['docker.io/library/**'], networks: ['127.0.0.2/32'] },
        ],
        signingKeyFile: join(dir.path, 'key.pem'),
      },
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('lets the certificate the rule names pull, and no other', async () => {
    expect((await curl('/v2/team/tool/manifests/v1', node)).status).toBe(200);
    expect((await curl(`/v2/team/tool/blobs/${image.config.digest}`, node)).status).toBe(200);
    expect((await curl('/v2/team/tool/manifests/v1', other)).status).toBe(403);
    const none = await curl('/v2/team/tool/manifests/v1');
    expect(none.status).toBe(401);
    // Over HTTPS, the realm is https too, on the address the client used.
    expect(none.challenge).toContain(`realm="${wharf.tls!.url}/token"`);
  });

  it('grants by the client\'s own address, never the loopback hop between threads', async () => {
    expect((await curl('/v2/library/base/manifests/v1')).status).toBe(200);
    expect((await curl('/v2/library/base/tags/list')).status).toBe(200);
    // A rule on 127.0.0.1 (the hop) must not be what lets it in: 127.0.0.2 is the client.
    const res = await fetch(`${wharf.url}/v2/library/base/manifests/v1`);
    expect(res.status).toBe(401);
    await res.arrayBuffer();
  });
});
