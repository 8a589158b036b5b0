// Any client can make a registry answer 500 (registry 2.8 does for a layer digest asked for as a
// manifest). Such answers must not open the upstream's breaker for everyone; an upstream that
// fails as a whole (its /v2/ fails too) still opens it.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startHostileUpstream, type HostileUpstream } from '../support/hostile-upstream.ts';

const image = makeImage({ name: 'breaker-small', files: { 'a.txt': 'small\n' } });

describe('breaker against client-made error answers', () => {
  let registry: UpstreamRegistry;
  let broken: HostileUpstream;
  let wharf: TestWharf;

  const get = async (path: string) => {
    const res = await request(`${wharf.url}${path}`, { headers: { accept: image.manifest.mediaType } });
    const text = await res.body.text();
    return { status: res.statusCode, text };
  };

  beforeAll(async () => {
    registry = await startUpstreamRegistry();
    await pushImage(registry.url, 'library/small', 'latest', image);
    broken = await startHostileUpstream(() => ({ status: 500, body: 'down' }));
    wharf = await startWharf({
      upstreams: [
        { name: 'docker.io', url: registry.url, default: true },
        { name: 'broken.test', url: broken.url },
      ],
      resilience: { breaker: { failureThreshold: 5, openMs: 30_000 } },
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await broken?.stop();
    await registry?.stop();
  });

  it('keeps serving uncached content after many 500s a client provoked', async () => {
    const layer = image.layers[0]!.digest;
    for (let i = 0; i < 20; i++) {
      const res = await get(`/v2/small/manifests/${layer}`);
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(res.text).not.toContain('circuit breaker');
    }
    const manifest = await get('/v2/small/manifests/latest');
    expect(manifest.status).toBe(200);
    const config = await get(`/v2/small/blobs/${image.config.digest}`);
    expect(config.status).toBe(200);
  });

  it('still opens for an upstream that fails as a whole', async () => {
    for (let i = 0; i < 8; i++) await get(`/v2/broken.test/r${i}/manifests/latest`);
    await new Promise((r) => setTimeout(r, 200)); // the confirming probe
    const asked = broken.requests.length;
    const res = await get('/v2/broken.test/other/manifests/latest');
    expect(res.status).toBe(503);
    expect(res.text).toContain('circuit breaker open');
    expect(broken.requests.length).toBe(asked);
  });
});
