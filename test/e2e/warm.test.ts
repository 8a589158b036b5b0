// `wharf warm` as users run it (its own process, against a running wharf): everything cached
// for all platforms or only the asked ones, nothing fetched twice, a pull that works with the
// upstream down afterwards, failures reported with a non-zero exit, a progress bar on a terminal.
import { hash } from '@node-rs/bcrypt';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, makeIndex } from '../support/test-images.ts';
import { pushImage, pushIndex } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startTcpFaults, type TcpFaults } from '../support/tcp-faults.ts';
import { runWharfCli } from '../support/wharf-process.ts';
import { Skopeo } from '../support/skopeo.ts';
import { run } from '../support/run.ts';
import { freePort } from '../support/free-port.ts';

const amd64 = makeImage({ name: 'warm', files: { arch: 'amd64\n' }, arch: 'amd64', extraLayerBytes: 400 << 10 });
const arm64 = makeImage({ name: 'warm', files: { arch: 'arm64\n' }, arch: 'arm64', extraLayerBytes: 400 << 10 });
const multi = makeIndex([amd64, arm64], 'oci');
const solo = makeImage({ name: 'warm-solo', files: { 's.txt': 'solo\n' }, mediaType: 'docker' });
const plat = [makeImage({ name: 'warm-p', files: { a: 'a\n' }, arch: 'amd64' }), makeImage({ name: 'warm-p', files: { a: 'b\n' }, arch: 'arm64' })];

describe('wharf warm', () => {
  let upstream: UpstreamRegistry;
  let link: TcpFaults;
  let wharf: TestWharf;
  let skopeo: Skopeo;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushIndex(upstream.url, 'library/multi', 'latest', multi, [amd64, arm64]);
    await pushImage(upstream.url, 'team/solo', '1', solo);
    await pushIndex(upstream.url, 'library/plat', 'latest', makeIndex(plat, 'oci'), plat);
    link = await startTcpFaults({ host: '127.0.0.1', port: upstream.port });
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: link.url, default: true }, { name: 'ghcr.io', url: link.url }] });
    skopeo = await Skopeo.create();
  });

  afterAll(async () => {
    await wharf?.stop();
    await link?.stop();
    await upstream?.stop();
    await skopeo?.cleanup();
  });

  const blobGets = async () => {
    await upstream.settleLog();
    return upstream.requestLog().filter((e) => e.method === 'GET' && e.path.includes('/blobs/'));
  };

  it('caches every platform and blob, then a pull works with the upstream down', async () => {
    const result = await runWharfCli(['warm', '--url', wharf.url, 'multi:latest', 'ghcr.io/team/solo:1']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`fetched`);
    const blobs = [amd64, arm64, solo].flatMap((i) => [i.config, ...i.layers]);
    expect(result.stdout).toMatch(new RegExp(`warmed 2 of 2 images: ${blobs.length} blobs fetched \\(.* MB\\), 0 already cached, 0 failed`));
    for (const blob of blobs) expect(await wharf.deps.blobStore.stat(blob.digest), blob.digest).toBeDefined();

    await link.setMode({ kind: 'refuse' });
    try {
      const { index } = await skopeo.copy(`docker://${wharf.host}/library/multi:latest`, { all: true });
      expect(index.manifests[0]?.digest).toBe(multi.digest);
    } finally {
      await link.setMode({ kind: 'pass' });
    }
  });

  it('fetches nothing the second time', async () => {
    const before = (await blobGets()).length;
    const result = await runWharfCli(['warm', '--url', wharf.url, 'docker.io/library/multi:latest']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('0 blobs fetched (0.0 MB), 6 already cached, 0 failed');
    expect((await blobGets()).length).toBe(before);
  });

  it('warms only the platforms asked for', async () => {
    const result = await runWharfCli(['warm', '--url', wharf.url, '--platform', 'linux/arm64', 'plat']);
    expect(result.code).toBe(0);
    const fetched = (await blobGets()).map((e) => e.path);
    expect(fetched.some((p) => p.endsWith(plat[1]!.config.digest))).toBe(true);
    expect(fetched.some((p) => p.endsWith(plat[0]!.config.digest))).toBe(false);
  });

  it('reports what failed and exits 1, still warming the rest', async () => {
    const result = await runWharfCli(['warm', '--url', wharf.url, 'library/missing:1', 'ghcr.io/team/solo:1']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/library\/missing:1: FAILED .*404 MANIFEST_UNKNOWN/);
    expect(result.stdout).toContain('warmed 1 of 2 images');
    const usage = await runWharfCli(['warm', '--url', wharf.url]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('no image references given');
  });

  it('says that no wharf answers, and how to start one or point at it, instead of a bare ECONNREFUSED', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const refused = await runWharfCli(['warm', '--url', nobody, 'library/app:1']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(`wharf warm: no wharf answers at ${nobody} (ECONNREFUSED).\nStart one (npx wharf serve --config FILE), or give the address of the running one with --url URL.\n`);
    // Something else listening is not a wharf either.
    const other = await runWharfCli(['warm', '--url', upstream.url, 'library/app:1']);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`no wharf answers at ${upstream.url} (it answered 404 to /healthz`);
  });

  it('draws a progress bar on a terminal', async () => {
    // `script` gives the command a pseudo-terminal, as an interactive shell would.
    const entry = new URL('../../bin/wharf.js', import.meta.url).pathname;
    const { stdout } = await run('script', ['-qec', `${process.execPath} ${entry} warm --url ${wharf.url} multi:latest`, '/dev/null']);
    expect(stdout).toMatch(/warming \[[█░]+\] 100% \| [\d.]+\/[\d.]+ MB \| 6 blobs/);
    expect(stdout).toContain('warmed 1 of 1 images');
  });
});

describe('wharf warm with auth on', () => {
  let upstream: UpstreamRegistry;
  let dir: TempDir;
  let wharf: TestWharf;
  const image = makeImage({ name: 'warm-auth', files: { 'w.txt': 'warm with a token\n' } });
  const TOKEN = 'warm-machine-token-0123456789';

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'team/app', 'v1', image);
    dir = await makeTempDir('wharf-warm-auth-');
    await writeFile(join(dir.path, 'htpasswd'), `ops:${await hash('ops-password-1', 5)}\n`);
    wharf = await startWharf({
      upstreams: [{ name: 'docker.io', url: upstream.url, default: true }],
      auth: {
        htpasswd: { path: join(dir.path, 'htpasswd') },
        machines: { warmer: { sha256: createHash('sha256').update(TOKEN).digest('hex') } },
        rules: [{ repositories: ['docker.io/**'], machines: ['warmer'], users: ['ops'] }],
        signingKeyFile: join(dir.path, 'key.pem'),
      },
    });
    await writeFile(join(dir.path, 'token'), `${TOKEN}\n`);
    await writeFile(join(dir.path, 'creds'), 'ops:ops-password-1\n');
    await writeFile(join(dir.path, 'wrong'), 'ops:nope\n');
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('warms with a machine token or a user from a file, and says why without', async () => {
    const denied = await runWharfCli(['warm', '--url', wharf.url, 'team/app:v1']);
    expect(denied.code).toBe(1);
    expect(denied.stdout).toMatch(/team\/app:v1: FAILED .*401/);
    const wrong = await runWharfCli(['warm', '--url', wharf.url, '--creds-file', join(dir.path, 'wrong'), 'team/app:v1']);
    expect(wrong.code).toBe(1);
    expect(`${wrong.stdout}${wrong.stderr}`).not.toContain('nope');
    const byToken = await runWharfCli(['warm', '--url', wharf.url, '--token-file', join(dir.path, 'token'), 'team/app:v1']);
    expect(byToken.code, byToken.stdout + byToken.stderr).toBe(0);
    expect(byToken.stdout).toContain('warmed 1 of 1 images');
    const byUser = await runWharfCli(['warm', '--url', wharf.url, '--creds-file', join(dir.path, 'creds'), 'team/app:v1']);
    expect(byUser.code).toBe(0);
    const both = await runWharfCli(['warm', '--url', wharf.url, '--creds-file', join(dir.path, 'creds'), '--token-file', join(dir.path, 'token'), 'team/app:v1']);
    expect(both.code).toBe(2);
  });
});
