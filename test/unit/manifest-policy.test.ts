// ManifestService's policy against an in-memory upstream that counts calls, with a fake clock:
// fresh tags, revalidation, moved tags, stale copies on each kind of outage, the budget, offline.
// The end-to-end tests (test/e2e/protocol.test.ts, outages.test.ts) show the same over HTTP.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedManifestStore } from '../../src/cache/embedded-manifest-store.ts';
import { MemoryCachedManifestStore } from '../../src/cache/memory-cached-manifest-store.ts';
import { ManifestUnknownError, UpstreamUnavailableError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { ManifestService } from '../../src/proxy/manifest-service.ts';
import { MemoryUpstream, ociManifest } from '../support/memory-upstream.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

const TTL_S = 60;
const v1 = ociManifest(1);
const v2 = ociManifest(2);

describe('manifest policy', () => {
  let dir: TempDir;
  let store: MemoryCachedManifestStore;
  let clock: number;
  let service: ManifestService;
  let upstream: MemoryUpstream;

  beforeEach(async () => {
    dir = await makeTempDir('wharf-policy-');
    store = new MemoryCachedManifestStore(new EmbeddedManifestStore(dir.path), { maxManifests: 100 });
    clock = 1_700_000_000_000;
    service = new ManifestService({ store, memory: store, tagTtlSeconds: TTL_S, logger: createLogger('silent'), now: () => clock });
    upstream = new MemoryUpstream({ staleAfterMs: 50 });
    upstream.tag('app', 'latest', v1);
  });

  afterEach(async () => {
    await store.close();
    await dir.cleanup();
  });

  const later = (seconds: number) => (clock += seconds * 1000);

  it('fetches a tag once, then serves it from the cache while fresh', async () => {
    expect((await service.get(upstream, 'app', 'latest')).cache).toBe('miss');
    expect(upstream.count('HEAD') + upstream.count('GET')).toBe(2); // HEAD for the digest, GET for the body
    later(TTL_S - 1);
    const again = await service.get(upstream, 'app', 'latest');
    expect(again.cache).toBe('hit');
    expect(again.manifest.digest).toBe(v1.digest);
    expect(upstream.calls.length).toBe(2);
  });

  it('revalidates a tag past its window with one HEAD and no GET when the digest is the same', async () => {
    await service.get(upstream, 'app', 'latest');
    later(TTL_S + 1);
    const res = await service.get(upstream, 'app', 'latest');
    expect(res.cache).toBe('revalidated');
    expect(upstream.count('HEAD')).toBe(2);
    expect(upstream.count('GET')).toBe(1);
    // Confirmed: fresh again for a whole window.
    later(TTL_S - 1);
    expect((await service.get(upstream, 'app', 'latest')).cache).toBe('hit');
  });

  it('follows a moved tag: the new digest is fetched once, the old manifest stays by digest', async () => {
    await service.get(upstream, 'app', 'latest');
    upstream.tag('app', 'latest', v2);
    later(TTL_S + 1);
    const moved = await service.get(upstream, 'app', 'latest');
    expect(moved.cache).toBe('miss');
    expect(moved.manifest.digest).toBe(v2.digest);
    const gets = upstream.count('GET');
    expect((await service.get(upstream, 'app', v1.digest)).cache).toBe('hit');
    expect(upstream.count('GET')).toBe(gets);
  });

  it.each(['down', 'rate-limited'] as const)('serves the cached copy stale at once when the upstream is %s', async (failure) => {
    await service.get(upstream, 'app', 'latest');
    later(TTL_S + 1);
    upstream.failure = failure;
    const started = performance.now();
    const res = await service.get(upstream, 'app', 'latest');
    expect(res.cache).toBe('stale');
    expect(res.manifest.digest).toBe(v1.digest);
    expect(performance.now() - started).toBeLessThan(upstream.staleAfterMs);
    expect(upstream.stale).toEqual(['manifest']);
  });

  it('serves the cached copy stale once the budget is spent, and takes the late answer when it comes', async () => {
    await service.get(upstream, 'app', 'latest');
    upstream.tag('app', 'latest', v2);
    later(TTL_S + 1);
    upstream.failure = 'slow';
    upstream.slowMs = 150;
    const started = performance.now();
    const res = await service.get(upstream, 'app', 'latest');
    const waited = performance.now() - started;
    expect(res.cache).toBe('stale');
    expect(waited).toBeGreaterThanOrEqual(upstream.staleAfterMs - 5);
    expect(waited).toBeLessThan(upstream.slowMs);
    // The revalidation went on in the background and moved the tag.
    await new Promise((r) => setTimeout(r, upstream.slowMs * 3));
    upstream.failure = 'none';
    const after = await service.get(upstream, 'app', 'latest');
    expect(after.cache).toBe('hit');
    expect(after.manifest.digest).toBe(v2.digest);
  });

  it('shares one revalidation among concurrent requests', async () => {
    await service.get(upstream, 'app', 'latest');
    later(TTL_S + 1);
    const heads = upstream.count('HEAD');
    const results = await Promise.all(Array.from({ length: 10 }, () => service.get(upstream, 'app', 'latest')));
    expect(results.every((r) => r.cache === 'revalidated')).toBe(true);
    expect(upstream.count('HEAD')).toBe(heads + 1);
  });

  it('answers 503, not 404, for an uncached tag while the upstream is down', async () => {
    upstream.failure = 'down';
    await expect(service.get(upstream, 'app', 'latest')).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  it('falls back to GET where the upstream does not answer HEAD', async () => {
    upstream.headSupported = false;
    const res = await service.get(upstream, 'app', 'latest');
    expect(res.manifest.digest).toBe(v1.digest);
    expect(upstream.count('GET')).toBe(1);
  });

  it('never asks the upstream offline: cached tags of any age are hits, the rest unknown', async () => {
    await service.get(upstream, 'app', 'latest');
    const offline = new MemoryUpstream({ name: upstream.name, offline: true });
    later(TTL_S * 1000);
    expect((await service.get(offline, 'app', 'latest')).cache).toBe('hit');
    await expect(service.get(offline, 'app', 'other')).rejects.toBeInstanceOf(ManifestUnknownError);
    expect(offline.calls).toEqual([]);
  });
});
