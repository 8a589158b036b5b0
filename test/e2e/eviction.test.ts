// The blob cache under a size budget: least recently used blobs go first, a hit makes a blob
// young again, a blob shared by repositories is one entry, pinned images stay, and an image
// whose manifest was just served keeps its blobs while the pull runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, sha256, type TestImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { metricValue } from '../support/metrics.ts';

const MiB = 1 << 20;
const images: TestImage[] = Array.from({ length: 6 }, (_, i) => makeImage({ name: `evict-${i}`, files: { 'e.txt': `${i}\n` }, extraLayerBytes: MiB }));
const big = (i: number) => images[i]!.layers.at(-1)!;

describe('eviction by size', () => {
  let upstream: UpstreamRegistry;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    for (const [i, image] of images.entries()) await pushImage(upstream.url, `library/img${i}`, 'latest', image);
    // The same image under a second name: its blobs are the same digests.
    await pushImage(upstream.url, 'library/img0-copy', 'latest', images[0]!);
  });

  afterAll(async () => {
    await upstream?.stop();
  });

  async function getBlob(wharf: TestWharf, repo: string, digest: string): Promise<void> {
    const res = await fetch(`${wharf.url}/v2/library/${repo}/blobs/${digest}`);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(digest);
    await wharf.deps.blobs.settled();
    // The pass a commit started runs on after it (the file can be gone before the books say so).
    await wharf.deps.maintenance.evictor.settled();
  }
  const cached = async (wharf: TestWharf, digest: string) => (await wharf.deps.blobStore.stat(digest)) !== undefined;
  const start = (cache: { maxBytes: number; evictionGraceSeconds: number; pinned?: string[] }) =>
    startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], cache: { minFreeBytes: 0, ...cache } });

  it('evicts least recently used blobs, counting a blob shared by two repositories once', async () => {
    const wharf = await start({ maxBytes: 3.5 * MiB, evictionGraceSeconds: 0 });
    try {
      await getBlob(wharf, 'img0', big(0).digest);
      await getBlob(wharf, 'img0-copy', big(0).digest); // the same blob by another name: a hit
      expect(await metricValue(wharf.url, 'wharf_cache_blobs')).toBe(1);
      await getBlob(wharf, 'img1', big(1).digest);
      await getBlob(wharf, 'img2', big(2).digest);
      await getBlob(wharf, 'img0', big(0).digest); // img0 is young again; img1 is now the oldest
      await getBlob(wharf, 'img3', big(3).digest); // 4 MiB > 3.5 MiB: evict down to 90%
      expect(await cached(wharf, big(1).digest)).toBe(false);
      for (const i of [0, 2, 3]) expect(await cached(wharf, big(i).digest)).toBe(true);
      expect(await metricValue(wharf.url, 'wharf_cache_blob_bytes')).toBeLessThanOrEqual(3.5 * MiB * 0.9);
      expect(await metricValue(wharf.url, 'wharf_cache_evictions_total')).toBe(1);
      // An evicted blob is simply fetched again; now img2 is the oldest.
      await getBlob(wharf, 'img1', big(1).digest);
      expect(await cached(wharf, big(1).digest)).toBe(true);
      expect(await cached(wharf, big(2).digest)).toBe(false);
    } finally {
      await wharf.stop();
    }
  });

  it('never evicts a pinned image', async () => {
    const wharf = await start({ maxBytes: 2.5 * MiB, evictionGraceSeconds: 0, pinned: ['docker.io/img4:latest'] });
    try {
      // Pull img4 by tag (manifest and blobs) so the pin resolves, then fill past the budget.
      await fetch(`${wharf.url}/v2/library/img4/manifests/latest`).then((r) => r.arrayBuffer());
      for (const blob of [images[4]!.config, ...images[4]!.layers]) await getBlob(wharf, 'img4', blob.digest);
      for (const i of [1, 2, 3]) await getBlob(wharf, `img${i}`, big(i).digest);
      for (const blob of [images[4]!.config, ...images[4]!.layers]) expect(await cached(wharf, blob.digest)).toBe(true);
      expect(await cached(wharf, big(1).digest)).toBe(false);
    } finally {
      await wharf.stop();
    }
  });

  it('keeps the blobs of an image whose manifest was just served, while its pull runs', async () => {
    const wharf = await start({ maxBytes: 2.5 * MiB, evictionGraceSeconds: 1 });
    try {
      // img5's layer is older than img1's; both are past the grace period.
      for (const i of [5, 1]) await getBlob(wharf, `img${i}`, big(i).digest);
      await new Promise((r) => setTimeout(r, 1200));
      // A client starts pulling img5: its manifest is served, its blobs count as used now.
      await fetch(`${wharf.url}/v2/library/img5/manifests/latest`).then((r) => r.arrayBuffer());
      await getBlob(wharf, 'img2', big(2).digest); // over budget: the oldest unprotected blob goes
      expect(await cached(wharf, big(5).digest)).toBe(true);
      expect(await cached(wharf, big(1).digest)).toBe(false);
    } finally {
      await wharf.stop();
    }
  });
});
