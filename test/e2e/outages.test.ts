// The upstream failing at the network level (a fault-injecting TCP proxy in front of the real
// registry): blackholed, refusing, resetting or corrupting mid-body. Cached content keeps
// flowing, fast; nothing broken is ever cached; recovery needs no restart.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, sha256 } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startTcpFaults, type TcpFaults } from '../support/tcp-faults.ts';
import { metricValue } from '../support/metrics.ts';
import { Skopeo } from '../support/skopeo.ts';

const app = makeImage({ name: 'outage-app', files: { 'a.txt': 'app\n' }, extraLayerBytes: 512 << 10 });
const other = makeImage({ name: 'outage-other', files: { 'o.txt': 'other\n' } });
// One uncached blob per mid-body fault.
const fragile = {
  'reset-after': makeImage({ name: 'outage-reset', files: { 'f.txt': 'reset\n' }, extraLayerBytes: 1 << 20 }),
  'corrupt-after': makeImage({ name: 'outage-corrupt', files: { 'f.txt': 'corrupt\n' }, extraLayerBytes: 1 << 20 }),
};
const TTL_SECONDS = 1;

const timed = async (url: string) => {
  const started = performance.now();
  const res = await fetch(url);
  const body = Buffer.from(await res.arrayBuffer());
  return { res, body, ms: performance.now() - started };
};
const pastTagTtl = () => new Promise((r) => setTimeout(r, TTL_SECONDS * 1000 + 100));

describe('upstream outages at the network level', () => {
  let upstream: UpstreamRegistry;
  let faults: TcpFaults;
  let wharf: TestWharf;
  let skopeo: Skopeo;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/app', 'latest', app);
    await pushImage(upstream.url, 'library/other', 'latest', other);
    for (const [fault, image] of Object.entries(fragile)) await pushImage(upstream.url, `library/${fault}`, 'latest', image);
    faults = await startTcpFaults({ host: '127.0.0.1', port: upstream.port });
    wharf = await startWharf({
      upstreams: [{ name: 'docker.io', url: faults.url, default: true }],
      tagTtlSeconds: TTL_SECONDS,
      timeouts: { headersMs: 4000 },
      resilience: { staleAfterMs: 1500, breaker: { openMs: 300, maxOpenMs: 1000 } },
    });
    skopeo = await Skopeo.create();
    // Cache both images, by tag, with all their blobs.
    await skopeo.copy(`docker://${wharf.host}/library/app:latest`);
    await skopeo.copy(`docker://${wharf.host}/library/other:latest`);
  });

  afterEach(async () => {
    await faults.setMode({ kind: 'pass' });
  });

  afterAll(async () => {
    await wharf?.stop();
    await faults?.stop();
    await upstream?.stop();
    await skopeo?.cleanup();
  });

  it('blackholed: the first stale tag within 3 s, then every cached answer within 50 ms, uncached fail fast', async () => {
    await pastTagTtl();
    await faults.setMode({ kind: 'blackhole' });
    const first = await timed(`${wharf.url}/v2/library/app/manifests/latest`);
    expect(first.res.status).toBe(200);
    expect(first.res.headers.get('x-wharf-cache')).toBe('stale');
    expect(first.res.headers.get('warning')).toMatch(/^110 /);
    expect(first.body.equals(app.manifest.body)).toBe(true);
    expect(first.ms).toBeLessThan(3000);

    for (const url of [
      `${wharf.url}/v2/library/app/manifests/latest`,
      `${wharf.url}/v2/library/other/manifests/latest`,
      `${wharf.url}/v2/library/app/manifests/${app.manifest.digest}`,
      `${wharf.url}/v2/library/app/blobs/${app.layers[0]!.digest}`,
    ]) {
      const later = await timed(url);
      expect(later.res.status, url).toBe(200);
      expect(later.ms, url).toBeLessThan(50);
    }
    const uncached = await timed(`${wharf.url}/v2/library/never/manifests/latest`);
    expect(uncached.res.status).toBe(503);
    expect(uncached.res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(JSON.parse(uncached.body.toString()).errors[0].code).toBe('UNAVAILABLE');
    expect(uncached.ms).toBeLessThan(50);
    // A whole pull by tag works too, from cache.
    const { index } = await skopeo.copy(`docker://${wharf.host}/library/app:latest`);
    expect(index.manifests[0]?.digest).toBe(app.manifest.digest);
    expect(await metricValue(wharf.url, 'wharf_upstream_breaker_state', { upstream: 'docker.io' })).toBeGreaterThan(0);
    expect(await metricValue(wharf.url, 'wharf_stale_served_total', { kind: 'manifest' })).toBeGreaterThanOrEqual(3);

    // Back up: the breaker's probe finds it and tags are revalidated again, no restart.
    await faults.setMode({ kind: 'pass' });
    const deadline = Date.now() + 8000;
    let cache: string | null = null;
    while (cache !== 'revalidated' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      cache = (await timed(`${wharf.url}/v2/library/app/manifests/latest`)).res.headers.get('x-wharf-cache');
    }
    expect(cache).toBe('revalidated');
  });

  it('refusing connections: cached tags, digests and pulls keep working; uncached get 503, never 404', async () => {
    await pastTagTtl();
    await faults.setMode({ kind: 'refuse' });
    const tag = await timed(`${wharf.url}/v2/library/other/manifests/latest`);
    expect(tag.res.status).toBe(200);
    expect(tag.res.headers.get('x-wharf-cache')).toBe('stale');
    expect(tag.ms).toBeLessThan(1000);
    const { index } = await skopeo.copy(`docker://${wharf.host}/library/other@${other.manifest.digest}`);
    expect(index.manifests[0]?.digest).toBe(other.manifest.digest);
    const uncached = await timed(`${wharf.url}/v2/library/never/manifests/latest`);
    expect(uncached.res.status).toBe(503);
    const uncachedBlob = await timed(`${wharf.url}/v2/library/never/blobs/${sha256(Buffer.from('nope'))}`);
    expect(uncachedBlob.res.status).toBe(503);
  });

  it('slow upstream: serves the cached tag at the budget, and the late answer still updates the cache', async () => {
    await pushImage(upstream.url, 'library/slow', 'latest', app);
    expect((await timed(`${wharf.url}/v2/library/slow/manifests/latest`)).res.status).toBe(200);
    await pushImage(upstream.url, 'library/slow', 'latest', other); // the tag moves upstream
    await pastTagTtl();
    faults.setLatency(2500);
    try {
      const stale = await timed(`${wharf.url}/v2/library/slow/manifests/latest`);
      expect(stale.res.headers.get('x-wharf-cache')).toBe('stale');
      expect(stale.res.headers.get('docker-content-digest')).toBe(app.manifest.digest);
      expect(stale.ms).toBeGreaterThan(1400);
      expect(stale.ms).toBeLessThan(2400);
      // The revalidation finishes in the background (HEAD, then GET of the new manifest).
      const deadline = Date.now() + 10_000;
      let digest: string | null = null;
      while (digest !== other.manifest.digest && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        digest = (await timed(`${wharf.url}/v2/library/slow/manifests/latest`)).res.headers.get('docker-content-digest');
      }
      expect(digest).toBe(other.manifest.digest);
    } finally {
      faults.setLatency(0);
    }
  });

  for (const fault of ['reset-after', 'corrupt-after'] as const) {
    it(`${fault} mid-body: every waiter is cut, nothing is cached, the next request refills`, async () => {
      // Response bytes on a fresh connection: headers (< 1 KiB) then the blob; 300 KiB in is mid-blob.
      const layer = fragile[fault].layers.at(-1)!;
      await faults.setMode({ kind: fault, bytes: 300 << 10 });
      const url = `${wharf.url}/v2/library/${fault}/blobs/${layer.digest}`;
      const outcomes = await Promise.all(
        Array.from({ length: 3 }, async () => {
          const res = await fetch(url);
          expect(res.status).toBe(200);
          return res.arrayBuffer().then(
            (b) => `complete ${b.byteLength}`,
            () => 'cut',
          );
        }),
      );
      expect(outcomes).toEqual(['cut', 'cut', 'cut']);
      await wharf.deps.blobs.settled();
      expect(await wharf.deps.blobStore.stat(layer.digest)).toBeUndefined();
      await faults.setMode({ kind: 'pass' });
      const good = await timed(url);
      expect(sha256(good.body)).toBe(layer.digest);
    });
  }
});
