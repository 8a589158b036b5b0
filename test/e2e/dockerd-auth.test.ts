// Real dockerd (Debian's docker.io, 20.10) against wharf over HTTPS with auth on, the way a build
// host uses a private registry: it trusts the test CA from /etc/docker/certs.d/<host:port>/,
// `docker login` fetches a token from wharf's token service, `docker pull` names the upstream
// in the path. And dockerd's registry-mirrors, which send no credentials, on a network the
// rules trust. The upstream is the real reference registry; its request log shows what reached it.
import { hash } from '@node-rs/bcrypt';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, type TestImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { createTestCa, type TestCa } from '../support/test-ca.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { LogLines } from '../support/log-lines.ts';
import { certsDirEntries, startDockerd, type Dockerd } from '../support/dockerd.ts';

// dockerd 20.10 pulls Docker v2 schema 2 (and OCI) manifests; schema 2 is what it pushes itself.
const imageA = makeImage({ name: 'dockerd-a', files: { 'a.txt': 'team a\n' }, mediaType: 'docker', extraLayerBytes: 256 << 10 });
const imageB = makeImage({ name: 'dockerd-b', files: { 'b.txt': 'team b, private\n' }, mediaType: 'docker', extraLayerBytes: 64 << 10 });
const mirrored = makeImage({ name: 'dockerd-mirror', files: { 'etc/os-release': 'ID=wharf-test\n' }, mediaType: 'docker', extraLayerBytes: 128 << 10 });
const ALICE = 'alice-pass-0123';

/** GETs the upstream answered from `since` on (the log also holds the test's pushes). */
const upstreamGets = (upstream: UpstreamRegistry, since: number, repo: string) =>
  upstream.requestLog().slice(since).filter((e) => e.method === 'GET' && e.path.startsWith(`/v2/${repo}/`));

/** What dockerd recorded for a pulled reference: the image ID is its config's digest. */
async function inspect(dockerd: Dockerd, ref: string): Promise<{ Id: string; RepoDigests: string[] }> {
  const { stdout } = await dockerd.docker(['image', 'inspect', ref]);
  return (JSON.parse(stdout) as Array<{ Id: string; RepoDigests: string[] }>)[0]!;
}

/** The message a command that must fail failed with. */
async function refusal(command: Promise<unknown>): Promise<string> {
  const outcome = await command.then(
    () => undefined,
    (err: Error) => err.message,
  );
  if (outcome === undefined) throw new Error('expected a refusal, but the command succeeded');
  return outcome;
}

async function expectPulled(dockerd: Dockerd, repoRef: string, tag: string, image: TestImage): Promise<void> {
  const { stdout } = await dockerd.docker(['pull', `${repoRef}:${tag}`]);
  expect(stdout).toContain(`Digest: ${image.manifest.digest}`);
  const pulled = await inspect(dockerd, `${repoRef}:${tag}`);
  expect(pulled.Id).toBe(image.config.digest);
  expect(pulled.RepoDigests).toContain(`${repoRef}@${image.manifest.digest}`);
}

describe.each([1, 2])('dockerd login and pull over TLS (threads: %i)', (threads) => {
  let dir: TempDir;
  let ca: TestCa;
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  let dockerd: Dockerd;
  let host: string;
  const logs = new LogLines();
  const login = (password: string) => dockerd.docker(['login', host, '-u', 'alice', '--password-stdin'], { input: `${password}\n` });
  /** What the CLI stored for wharf in its config.json ("user:password" in base64), if anything. */
  const storedLogin = async () => {
    const config = await readFile(join(dockerd.cliConfigDir, 'config.json'), 'utf8').then(JSON.parse, () => ({}));
    const auth = (config as { auths?: Record<string, { auth?: string }> }).auths?.[host]?.auth;
    return auth === undefined ? undefined : Buffer.from(auth, 'base64').toString();
  };

  beforeAll(async () => {
    dir = await makeTempDir('wharf-dockerd-auth-');
    ca = await createTestCa(dir.path, 'dockerd');
    const server = await ca.issue('127.0.0.1', { usage: 'server' });
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'acme/a', 'v1', imageA);
    await pushImage(upstream.url, 'acme/b', 'v1', imageB);
    const htpasswd = join(dir.path, 'htpasswd');
    await writeFile(htpasswd, `alice:${await hash(ALICE, 5)}\nbob:${await hash('bob-pass-4567', 5)}\n`);
    wharf = await startWharf({
      threads,
      logLevel: 'info',
      logDestination: logs,
      tls: { certFile: server.certPath, keyFile: server.keyPath },
      upstreams: [{ name: 'ghcr.io', url: upstream.url }],
      auth: {
        htpasswd: { path: htpasswd },
        // No rule grants 127.0.0.1's network anything: /v2/ would then answer dockerd without a
        // challenge, and dockerd 20.10 never sends a login it was not challenged for.
        rules: [
          { repositories: ['ghcr.io/acme/a'], users: ['alice'] },
          { repositories: ['ghcr.io/acme/b'], users: ['bob'] },
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
    // Nothing of ours is left in /etc/docker/certs.d, passed or failed.
    if (host) expect(await certsDirEntries()).not.toContain(host);
  });

  it('refuses docker login with a wrong password as unauthorized, stores nothing, and takes the right one', async () => {
    // wharf's own words, from its token service, as dockerd relays them.
    expect(await refusal(login('not-alices-password'))).toMatch(/unauthorized: authentication failed: wrong user name or password/);
    expect(await storedLogin()).toBeUndefined();
    const { stdout } = await login(ALICE);
    expect(stdout).toContain('Login Succeeded');
    expect(await storedLogin()).toBe(`alice:${ALICE}`);
    expect(dockerd.outsideConnections()).toBe(0);
  });

  it('pulls ghcr.io/acme/a as alice: manifest digest and image ID as pushed, fetched through wharf', async () => {
    await upstream.settleLog();
    const since = upstream.requestLog().length;
    await expectPulled(dockerd, `${host}/ghcr.io/acme/a`, 'v1', imageA);
    await upstream.settleLog();
    const fetched = upstreamGets(upstream, since, 'acme/a').map((e) => e.path.split('/').pop());
    for (const blob of [imageA.config, ...imageA.layers]) expect(fetched).toContain(blob.digest);
    // The layers were asked with alice's token: the access log names her (a cold blob is always
    // the main thread's to fill, so its line is there with threads: 2 as well).
    const layerLine = await logs.waitFor((l) => l.msg === 'request' && String(l.url).endsWith(imageA.layers[1]!.digest));
    expect(layerLine).toMatchObject({ status: 200, identity: 'user:alice', client: '127.0.0.1' });
  });

  it('refuses ghcr.io/acme/b to alice as denied, before anything of b is asked upstream', async () => {
    await upstream.settleLog();
    const since = upstream.requestLog().length;
    // "denied" is the 403 an authenticated caller gets (without credentials it would be
    // "unauthorized"; a wrong route "manifest unknown"). A hit thread may answer it, and its log
    // lines go to its own stdout, so the client's words and the upstream's log are the evidence.
    expect(await refusal(dockerd.docker(['pull', `${host}/ghcr.io/acme/b:v1`]))).toMatch(/Error response from daemon: denied\s*$/);
    await expect(inspect(dockerd, `${host}/ghcr.io/acme/b:v1`)).rejects.toThrow(/no such image/i);
    await upstream.settleLog();
    expect(upstream.requestLog().slice(since).filter((e) => e.path.includes('acme/b'))).toEqual([]);
  });

  it('after docker logout, pulls a no more (challenged, not served from the cache)', async () => {
    await dockerd.docker(['image', 'rm', `${host}/ghcr.io/acme/a:v1`]);
    await dockerd.docker(['logout', host]);
    expect(await storedLogin()).toBeUndefined();
    // a is in wharf's cache now: only the challenge stands between it and an anonymous pull.
    expect(await refusal(dockerd.docker(['pull', `${host}/ghcr.io/acme/a:v1`]))).toMatch(/Error response from daemon: unauthorized\s*$/);
    await expect(inspect(dockerd, `${host}/ghcr.io/acme/a:v1`)).rejects.toThrow(/no such image/i);
    // And logged in again, the same pull works, now from wharf's cache.
    await login(ALICE);
    await expectPulled(dockerd, `${host}/ghcr.io/acme/a`, 'v1', imageA);
  });
});

describe('dockerd registry-mirrors over TLS, on a network the rules trust', () => {
  let dir: TempDir;
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  let dockerd: Dockerd;
  let host: string;
  const logs = new LogLines();

  beforeAll(async () => {
    dir = await makeTempDir('wharf-dockerd-mirror-');
    const ca = await createTestCa(dir.path, 'mirror');
    const server = await ca.issue('127.0.0.1', { usage: 'server' });
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/mirrored', 'v1', mirrored);
    await pushImage(upstream.url, 'library/private', 'v1', imageB);
    wharf = await startWharf({
      logLevel: 'info',
      logDestination: logs,
      tls: { certFile: server.certPath, keyFile: server.keyPath },
      upstreams: [{ name: 'docker.io', url: upstream.url, default: true }],
      auth: {
        rules: [
          { repositories: ['docker.io/library/private'], users: ['nobody-here'] },
          { repositories: ['docker.io/**'], networks: ['127.0.0.0/8'] },
        ],
        signingKeyFile: join(dir.path, 'signing-key.pem'),
      },
    });
    host = wharf.tlsHost!;
    dockerd = await startDockerd({ daemonJson: { 'registry-mirrors': [`https://${host}`] }, trust: [{ host, caFile: ca.certPath }] });
  });

  afterAll(async () => {
    await dockerd?.stop();
    await wharf?.stop();
    await upstream?.stop();
    await dir?.cleanup();
    if (host) expect(await certsDirEntries()).not.toContain(host);
  });

  it('pulls a Docker Hub name through the mirror without credentials, byte for byte', async () => {
    await upstream.settleLog();
    const since = upstream.requestLog().length;
    await expectPulled(dockerd, 'mirrored', 'v1', mirrored);
    // Through wharf: its access log has the mirror requests, anonymous from 127.0.0.1, and the
    // upstream had them from wharf; dockerd tried nothing beyond the mirror.
    const manifest = await logs.waitFor((l) => l.msg === 'request' && l.url === `/v2/library/mirrored/manifests/${mirrored.manifest.digest}`);
    expect(manifest).toMatchObject({ status: 200, identity: 'anonymous', client: '127.0.0.1' });
    await upstream.settleLog();
    const fetched = upstreamGets(upstream, since, 'library/mirrored').map((e) => e.path.split('/').pop());
    for (const blob of [mirrored.config, ...mirrored.layers]) expect(fetched).toContain(blob.digest);
    expect(dockerd.outsideConnections()).toBe(0);
  });

  it('gives the trusted network nothing the rules keep from it: the mirror refuses, the upstream is never asked', async () => {
    await upstream.settleLog();
    const since = upstream.requestLog().length;
    const linesBefore = logs.lines.length;
    // dockerd falls back from a refusing mirror to Docker Hub, which the test's proxy refuses (a
    // reset or an EOF): the last error dockerd reports is Hub's, the mirror's is in wharf's log.
    expect(await refusal(dockerd.docker(['pull', 'private:v1']))).toMatch(/"https:\/\/registry-1\.docker\.io\/v2\/": (unexpected EOF|.*connection reset)/);
    const refused = await logs.waitFor((l) => l.msg === 'request' && String(l.url).startsWith('/v2/library/private/manifests/'), { since: linesBefore });
    expect(refused).toMatchObject({ status: 401, identity: 'anonymous' });
    expect(dockerd.outsideConnections()).toBeGreaterThan(0);
    await upstream.settleLog();
    expect(upstream.requestLog().slice(since).filter((e) => e.path.includes('library/private'))).toEqual([]);
    await expect(inspect(dockerd, 'private:v1')).rejects.toThrow(/no such image/i);
  });
});
