// wharf's disk refusing blobs: too small for the blob, or read-only. Pulls must still succeed,
// straight from the upstream and still digest-checked, with nothing broken left in the cache.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, sha256 } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { mountTmpfs, type Tmpfs } from '../support/tmpfs.ts';
import { Skopeo } from '../support/skopeo.ts';
import { metricValue } from '../support/metrics.ts';

const big = makeImage({ name: 'diskfull', files: { 'd.txt': 'disk full\n' }, extraLayerBytes: 6 << 20 });
const small = makeImage({ name: 'diskro', files: { 'r.txt': 'read only\n' }, extraLayerBytes: 256 << 10 });
const bigLayer = big.layers[big.layers.length - 1]!;

async function committedBlobs(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'blobs', 'sha256');
  const found: string[] = [];
  for (const shard of await readdir(root).catch(() => [])) {
    for (const name of await readdir(join(root, shard)).catch(() => [])) found.push(`sha256:${name}`);
  }
  return found;
}

describe('blob cache on a disk that cannot take the blob', () => {
  let upstream: UpstreamRegistry;
  let skopeo: Skopeo;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/big', 'latest', big);
    await pushImage(upstream.url, 'library/small', 'latest', small);
    skopeo = await Skopeo.create();
  });

  afterAll(async () => {
    await upstream?.stop();
    await skopeo?.cleanup();
  });

  it('passes a blob larger than the free space through, verified, and caches what fits', async () => {
    const disk = await mountTmpfs(4 << 20);
    let wharf: TestWharf | undefined;
    try {
      wharf = await startWharf({ dataDir: disk.path, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
      const { index } = await skopeo.copy(`docker://${wharf.host}/library/big:latest`);
      expect(index.manifests[0]?.digest).toBe(big.manifest.digest);
      const again = await fetch(`${wharf.url}/v2/library/big/blobs/${bigLayer.digest}`);
      expect(again.headers.get('x-wharf-cache')).toBe('bypass');
      expect(sha256(Buffer.from(await again.arrayBuffer()))).toBe(bigLayer.digest);
      await wharf.deps.blobs.settled();
      // The small blobs of the image fit and were cached; the big one never half-landed.
      const cached = await committedBlobs(disk.path);
      expect(cached).toContain(big.config.digest);
      expect(cached).not.toContain(bigLayer.digest);
      expect(await metricValue(wharf.url, 'wharf_blob_cache_bypassed_total')).toBeGreaterThanOrEqual(2);
    } finally {
      await wharf?.stop();
      await disk.unmount();
    }
  });

  it('keeps serving from a data dir that turned read-only, cached and uncached alike', async () => {
    const disk = await mountTmpfs(64 << 20);
    let wharf: TestWharf | undefined;
    try {
      wharf = await startWharf({ dataDir: disk.path, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], tagTtlSeconds: 0 });
      const first = small.layers[0]!;
      expect((await fetch(`${wharf.url}/v2/library/small/blobs/${first.digest}`).then((r) => r.arrayBuffer())).byteLength).toBe(first.body.length);
      await wharf.deps.blobs.settled();
      await disk.remount('ro');
      const { index } = await skopeo.copy(`docker://${wharf.host}/library/small:latest`);
      expect(index.manifests[0]?.digest).toBe(small.manifest.digest);
      const cachedHit = await fetch(`${wharf.url}/v2/library/small/blobs/${first.digest}`);
      expect(cachedHit.headers.get('x-wharf-cache')).toBe('hit');
      await cachedHit.arrayBuffer();
      expect(await metricValue(wharf.url, 'wharf_blob_cache_bypassed_total')).toBeGreaterThan(0);
      expect(await metricValue(wharf.url, 'wharf_manifest_store_errors_total', { backend: 'embedded' })).toBeGreaterThan(0);
    } finally {
      await wharf?.stop();
      await disk.remount('rw').catch(() => undefined);
      await disk.unmount();
    }
  });
});
