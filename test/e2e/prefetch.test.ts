// upstreams[].prefetch: serving an image manifest starts the downloads of its blobs, so the node
// that pulls next finds them cached; under the upstream's limits, never for an upstream without
// the switch. Both thread modes (the cold manifest reaches the main thread either way).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { until } from '../support/until.ts';

const image = makeImage({ name: 'prefetch', files: { 'p.txt': 'prefetched\n' }, extraLayerBytes: 1 << 20 });
const blobs = [image.config, ...image.layers];

describe.each([1, 2])('prefetch (threads: %i)', (threads) => {
  let registry: UpstreamRegistry;
  let eager: FaultProxy;
  let lazy: FaultProxy;
  let wharf: TestWharf;

  beforeAll(async () => {
    registry = await startUpstreamRegistry();
    await pushImage(registry.url, 'library/app', 'v1', image);
    [eager, lazy] = await Promise.all([startFaultProxy(registry.url), startFaultProxy(registry.url)]);
    wharf = await startWharf({
      threads,
      upstreams: [
        { name: 'docker.io', url: eager.url, default: true, prefetch: true, limits: { maxConcurrent: 1 } },
        { name: 'ghcr.io', url: lazy.url },
      ],
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await Promise.all([eager?.stop(), lazy?.stop()]);
    await registry?.stop();
  });

  const blobGets = (proxy: FaultProxy) => proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
  const manifest = (prefix: string) => fetch(`${wharf.url}/v2/${prefix}library/app/manifests/v1`, { headers: { accept: image.manifest.mediaType } }).then((r) => r.arrayBuffer());

  it("fetches a served manifest's blobs before anyone asks, once each, and the next pull is all hits", async () => {
    await manifest('');
    await until(async () => (await Promise.all(blobs.map((b) => wharf.deps.blobStore.stat(b.digest)))).every(Boolean), 'every blob fetched ahead', 10_000, 20);
    expect(blobGets(eager)).toBe(blobs.length);
    for (const blob of blobs) {
      const res = await fetch(`${wharf.url}/v2/library/app/blobs/${blob.digest}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(blob.body)).toBe(true);
      expect(res.headers.get('x-wharf-cache')).toBe('hit');
    }
    await manifest(''); // served again: nothing more to fetch
    await new Promise((r) => setTimeout(r, 200));
    expect(blobGets(eager)).toBe(blobs.length);
  });

  it('leaves an upstream without prefetch alone', async () => {
    await manifest('ghcr.io/');
    await new Promise((r) => setTimeout(r, 500));
    expect(blobGets(lazy)).toBe(0);
  });
});
