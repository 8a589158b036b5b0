// containerd (`ctr images pull --hosts-dir`, as a Kubernetes node pulls) through wharf: its
// mirror resolver names the registry with ?ns=, which must pick the right upstream. Two
// separate upstream registries make a wrong route fail the pull instead of passing by luck.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, makeIndex } from '../support/test-images.ts';
import { pushImage, pushIndex } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startContainerd, type Containerd } from '../support/containerd.ts';
import { exampleHostsDir } from '../support/client-examples.ts';

const hubImage = makeImage({ name: 'ctr-hub', files: { 'srv/hub.txt': 'from the hub\n' }, extraLayerBytes: 1 << 20 });
const amd64 = makeImage({ name: 'ctr-multi', files: { arch: 'amd64\n' }, arch: 'amd64' });
const arm64 = makeImage({ name: 'ctr-multi', files: { arch: 'arm64\n' }, arch: 'arm64' });
const multi = makeIndex([amd64, arm64], 'oci');
const ghcrImage = makeImage({ name: 'ctr-ghcr', files: { 'app/ghcr.txt': 'from ghcr\n' }, mediaType: 'docker' });

/** What wharf fetched (the log also holds the test's own pushes: HEAD, POST, PUT). */
const blobGets = (registry: UpstreamRegistry) => registry.requestLog().filter((e) => e.method === 'GET' && e.path.includes('/blobs/sha256:'));

describe('containerd pulls through wharf with ?ns= routing', () => {
  let hub: UpstreamRegistry;
  let ghcr: UpstreamRegistry;
  let wharf: TestWharf;
  let containerd: Containerd;
  let hostsDir: string;

  beforeAll(async () => {
    [hub, ghcr] = await Promise.all([startUpstreamRegistry(), startUpstreamRegistry()]);
    await pushImage(hub.url, 'library/ctrhub', 'v1', hubImage);
    await pushIndex(hub.url, 'library/ctrmulti', 'latest', multi, [amd64, arm64]);
    await pushImage(ghcr.url, 'owner/tool', 'v2', ghcrImage);
    wharf = await startWharf({
      upstreams: [
        { name: 'docker.io', url: hub.url, default: true },
        { name: 'ghcr.io', url: ghcr.url },
      ],
    });
    containerd = await startContainerd();
    // The shipped config/examples/clients/containerd/certs.d, as users copy it.
    hostsDir = await exampleHostsDir(await containerd.workDir('hosts'), wharf.host);
  });

  afterAll(async () => {
    await containerd?.stop();
    await wharf?.stop();
    await Promise.all([hub?.stop(), ghcr?.stop()]);
  });

  it('pulls a Docker Hub official image by its short name', async () => {
    const pulled = await containerd.pull('docker.io/library/ctrhub:v1', { hostsDir });
    expect(pulled.digest).toBe(hubImage.manifest.digest);
    await hub.settleLog();
    expect(hub.requestLog().some((e) => e.method !== 'PUT' && e.path.startsWith('/v2/library/ctrhub/manifests/v1'))).toBe(true);
  });

  it('pulls from ghcr.io through the same wharf, reaching only the ghcr upstream', async () => {
    const pulled = await containerd.pull('ghcr.io/owner/tool:v2', { hostsDir });
    expect(pulled.digest).toBe(ghcrImage.manifest.digest);
    await Promise.all([hub.settleLog(), ghcr.settleLog()]);
    expect(blobGets(ghcr).map((e) => e.path.split('/blobs/')[1]).sort()).toEqual(
      [ghcrImage.config.digest, ...ghcrImage.layers.map((l) => l.digest)].sort(),
    );
    expect(hub.requestLog().some((e) => e.path.includes('owner/tool'))).toBe(false); // not even a 404 probe
  });

  it('pulls one platform of a multi-arch index with the index digest unchanged', async () => {
    const pulled = await containerd.pull('docker.io/library/ctrmulti:latest', { hostsDir, platform: 'linux/arm64' });
    expect(pulled.digest).toBe(multi.digest);
    await hub.settleLog();
    const blobPaths = blobGets(hub).map((e) => e.path);
    expect(blobPaths.some((p) => p.endsWith(arm64.config.digest))).toBe(true);
    expect(blobPaths.some((p) => p.endsWith(amd64.config.digest))).toBe(false);
  });
});
