// End to end: a real upstream registry (distribution 2.8), wharf in front of it, skopeo pulling
// through wharf in each routing style; run once per manifest store backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, makeIndex } from '../support/test-images.ts';
import { pushImage, pushIndex } from '../support/push-image.ts';
import { startRedisServer } from '../support/redis-server.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { Skopeo } from '../support/skopeo.ts';
import { exampleRegistriesConf } from '../support/client-examples.ts';


const hello = makeImage({ name: 'hello', files: { 'hello/world.txt': 'hello from wharf tests\n' }, extraLayerBytes: 3 << 20 });
const helloDocker = makeImage({ name: 'hello-docker', files: { 'etc/motd': 'docker v2\n' }, mediaType: 'docker' });
const amd64 = makeImage({ name: 'multi', files: { arch: 'amd64\n' }, arch: 'amd64' });
const arm64 = makeImage({ name: 'multi', files: { arch: 'arm64\n' }, arch: 'arm64' });
const multi = makeIndex([amd64, arm64], 'oci');
const ghcrImage = makeImage({ name: 'ghcr', files: { 'app/bin': 'ghcr app\n' } });

async function blobGets(up: UpstreamRegistry) {
  await up.settleLog();
  return up.requestLog().filter((e) => e.method === 'GET' && e.path.includes('/blobs/sha256:'));
}

describe.each(['embedded', 'redis'] as const)('pull through wharf (%s manifest store)', (backend) => {
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  let skopeo: Skopeo;
  let redis: Awaited<ReturnType<typeof startRedisServer>> | undefined;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/hello', 'latest', hello);
    await pushImage(upstream.url, 'library/hello', 'docker', helloDocker);
    await pushIndex(upstream.url, 'library/multi', 'latest', multi, [amd64, arm64]);
    await pushImage(upstream.url, 'someowner/img', '1.0', ghcrImage);
    if (backend === 'redis') redis = await startRedisServer();
    wharf = await startWharf({
      redisUrl: redis?.url,
      upstreams: [
        { name: 'docker.io', url: upstream.url, default: true },
        { name: 'ghcr.io', url: upstream.url },
      ],
    });
    skopeo = await Skopeo.create();
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await redis?.stop();
    await skopeo?.cleanup();
  });

  it('answers the /v2/ ping', async () => {
    const res = await fetch(`${wharf.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await res.json()).toEqual({});
  });

  it('pulls by default upstream with 1x upstream blob traffic, then serves the second pull from cache', async () => {
    const before = (await blobGets(upstream)).length;
    const first = await skopeo.copy(`docker://${wharf.host}/library/hello:latest`);
    expect(first.index.manifests[0]?.digest).toBe(hello.manifest.digest);
    const cold = (await blobGets(upstream)).slice(before);
    // Every blob (config + layers) fetched exactly once.
    const expected = [hello.config.digest, ...hello.layers.map((l) => l.digest)].sort();
    expect(cold.map((e) => e.path.split('/blobs/')[1]).sort()).toEqual(expected);

    const again = (await blobGets(upstream)).length;
    const second = await skopeo.copy(`docker://${wharf.host}/library/hello:latest`);
    expect(second.index.manifests[0]?.digest).toBe(hello.manifest.digest);
    expect((await blobGets(upstream)).length - again).toBe(0);
  });

  it('pulls single-segment Docker Hub names as library/', async () => {
    // A Docker v2 manifest is converted when written to an OCI layout: compare the raw bytes.
    await skopeo.copy(`docker://${wharf.host}/hello:docker`);
    const raw = await skopeo.inspectRaw(`docker://${wharf.host}/hello:docker`);
    expect(raw.equals(helloDocker.manifest.body)).toBe(true);
  });

  it('pulls through the shipped registries.conf, registry host in the mirror path (podman/CRI-O style)', async () => {
    const conf = await skopeo.registriesConf(await exampleRegistriesConf(wharf.host));
    const ghcr = await skopeo.copy('docker://ghcr.io/someowner/img:1.0', { registriesConf: conf });
    expect(ghcr.index.manifests[0]?.digest).toBe(ghcrImage.manifest.digest);
    const hub = await skopeo.copy('docker://docker.io/library/hello:latest', { registriesConf: conf });
    expect(hub.index.manifests[0]?.digest).toBe(hello.manifest.digest);
    await upstream.settleLog();
    // Pulled (not the test's own PUT): the ghcr.io/ prefix was stripped on the way upstream.
    expect(upstream.requestLog().some((e) => e.method !== 'PUT' && e.path.startsWith('/v2/someowner/img/manifests/'))).toBe(true);
  });

  it('routes ?ns= requests to the named upstream and echoes OCI-Namespace', async () => {
    const res = await fetch(`${wharf.url}/v2/someowner/img/manifests/1.0?ns=ghcr.io`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('oci-namespace')).toBe('ghcr.io');
    expect(res.headers.get('docker-content-digest')).toBe(ghcrImage.manifest.digest);
    expect(Buffer.from(await res.arrayBuffer()).equals(ghcrImage.manifest.body)).toBe(true);
    const unknown = await fetch(`${wharf.url}/v2/someowner/img/manifests/1.0?ns=quay.io`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('NAME_UNKNOWN');
  });

  it('pulls a multi-arch index with every digest unchanged', async () => {
    const { index, dir } = await skopeo.copy(`docker://${wharf.host}/library/multi:latest`, { all: true });
    expect(index.manifests[0]?.digest).toBe(multi.digest);
    const { readFile } = await import('node:fs/promises');
    const stored = await readFile(`${dir}/blobs/sha256/${multi.digest.slice(7)}`);
    expect(stored.equals(multi.body)).toBe(true);
    for (const image of [amd64, arm64]) {
      const m = await readFile(`${dir}/blobs/sha256/${image.manifest.digest.slice(7)}`);
      expect(m.equals(image.manifest.body)).toBe(true);
    }
  });
});
