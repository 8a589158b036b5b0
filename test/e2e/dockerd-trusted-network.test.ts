// docker login on a host whose network the rules trust (node mirrors): dockerd 20.10, like
// containers/image, sends the credentials of a login only to a registry whose /v2/ ping
// challenged it. wharf once answered that ping 200 to such networks, and then a wrong password
// "logged in" and a user could not pull what the rules grant them; the ping is now challenged
// for every caller without credentials (src/auth/access-gate.ts, checkPing).
import { hash } from '@node-rs/bcrypt';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { createTestCa } from '../support/test-ca.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';

const image = makeImage({ name: 'trusted-net', files: { 'a.txt': 'team a\n' }, mediaType: 'docker' });
const PASSWORD = 'alice-pass-0123';

describe('docker login on a network the rules trust for node mirrors', () => {
  let dir: TempDir;
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  let dockerd: Dockerd;
  let host: string;
  const login = (password: string) => dockerd.docker(['login', host, '-u', 'alice', '--password-stdin'], { input: `${password}\n` });

  beforeAll(async () => {
    dir = await makeTempDir('wharf-trusted-net-');
    const ca = await createTestCa(dir.path, 'net');
    const server = await ca.issue('127.0.0.1', { usage: 'server' });
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'acme/a', 'v1', image);
    await writeFile(join(dir.path, 'htpasswd'), `alice:${await hash(PASSWORD, 5)}\n`);
    wharf = await startWharf({
      tls: { certFile: server.certPath, keyFile: server.keyPath },
      upstreams: [{ name: 'ghcr.io', url: upstream.url }, { name: 'docker.io', url: upstream.url, default: true }],
      auth: {
        htpasswd: { path: join(dir.path, 'htpasswd') },
        rules: [
          { repositories: ['ghcr.io/acme/**'], users: ['alice'] },
          { repositories: ['docker.io/**'], networks: ['127.0.0.0/8'] }, // the node mirrors' network
        ],
        signingKeyFile: join(dir.path, 'signing-key.pem'),
      },
    });
    host = wharf.tlsHost!;
    dockerd = await startDockerd({ trust: [{ host, caFile: ca.certPath }] });
  });

  afterAll(async () => {
    await dockerd?.stop();
    await wharf?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('refuses a wrong password at docker login', async () => {
    await expect(login('not-alices-password')).rejects.toThrow(/unauthorized/);
  });

  it('lets alice, logged in, pull what the rules grant her', async () => {
    await login(PASSWORD);
    const { stdout } = await dockerd.docker(['pull', `${host}/ghcr.io/acme/a:v1`]);
    expect(stdout).toContain(`Digest: ${image.manifest.digest}`);
  });
});
