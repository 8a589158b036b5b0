// podman pulling through wharf with the shipped config/examples/clients/registries.conf (what
// the README tells users to copy): Docker Hub by the plain mirror, ghcr.io with the registry
// name in the mirror's path. Two upstream registries, so a wrong route fails the pull.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { Podman } from '../support/podman.ts';
import { exampleRegistriesConf } from '../support/client-examples.ts';

const hubImage = makeImage({ name: 'podman-hub', files: { 'h.txt': 'hub via podman\n' }, extraLayerBytes: 256 << 10 });
const ghcrImage = makeImage({ name: 'podman-ghcr', files: { 'g.txt': 'ghcr via podman\n' }, mediaType: 'docker' });

describe('podman pulls through wharf (registries.conf mirrors)', () => {
  let hub: UpstreamRegistry;
  let ghcr: UpstreamRegistry;
  let wharf: TestWharf;
  let podman: Podman;

  beforeAll(async () => {
    [hub, ghcr] = await Promise.all([startUpstreamRegistry(), startUpstreamRegistry()]);
    await pushImage(hub.url, 'library/podimg', '1', hubImage);
    await pushImage(ghcr.url, 'owner/podimg', '2', ghcrImage);
    wharf = await startWharf({
      upstreams: [
        { name: 'docker.io', url: hub.url, default: true },
        { name: 'ghcr.io', url: ghcr.url },
      ],
    });
    podman = await Podman.create(await exampleRegistriesConf(wharf.host));
  });

  afterAll(async () => {
    await podman?.cleanup();
    await wharf?.stop();
    await Promise.all([hub?.stop(), ghcr?.stop()]);
  });

  it('pulls a Docker Hub image through the plain mirror', async () => {
    expect(await podman.pull('docker.io/library/podimg:1')).toBe(hubImage.manifest.digest);
  });

  it('pulls a ghcr.io image through the mirror with the registry in its path', async () => {
    expect(await podman.pull('ghcr.io/owner/podimg:2')).toBe(ghcrImage.manifest.digest);
    await ghcr.settleLog();
    expect(ghcr.requestLog().some((e) => e.method === 'GET' && e.path.includes('/blobs/'))).toBe(true);
  });
});
