// Redis as people run it for high availability: wharf finds the master through a sentinel and
// follows a failover. Under load across the failover, no pull of cached content fails; after it,
// new records land on the promoted master.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, type TestImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startRedisSentinelSet, SENTINEL_NAME, type RedisSentinelSet } from '../support/redis-sentinel.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { pullProblem, pullProblemsWhile } from '../support/pull-check.ts';

const TAGS = 6;
const images: TestImage[] = Array.from({ length: TAGS }, (_, i) => makeImage({ name: `sentinel-${i}`, files: { 'n.txt': `${i}\n` } }));
const later = makeImage({ name: 'sentinel-later', files: { 'l.txt': 'after the failover\n' } });

describe('Redis Sentinel', () => {
  let upstream: UpstreamRegistry;
  let redis: RedisSentinelSet;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    for (const [i, image] of images.entries()) await pushImage(upstream.url, 'library/app', `t${i}`, image);
    await pushImage(upstream.url, 'library/app', 'later', later);
    redis = await startRedisSentinelSet();
    wharf = await startWharf({ redis: { sentinels: [redis.sentinel], sentinelName: SENTINEL_NAME }, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await redis?.stop();
    await upstream?.stop();
  });

  const pullOne = (i: number) => pullProblem(wharf.url, 'library/app', `t${i}`, images[i]!);

  it('keeps every cached pull succeeding through a failover, then writes to the promoted master', async () => {
    for (let i = 0; i < TAGS; i++) expect(await pullOne(i)).toBeUndefined();
    const first = await redis.masterPort();
    const direct = new Redis({ host: '127.0.0.1', port: first });
    expect(await direct.dbsize()).toBeGreaterThan(0);
    direct.disconnect();

    expect(await pullProblemsWhile(6, (n) => pullOne(n % TAGS), () => redis.failover())).toEqual([]);

    const promoted = await redis.masterPort();
    expect(promoted).not.toBe(first);
    const res = await fetch(`${wharf.url}/v2/library/app/manifests/later`, { headers: { accept: later.manifest.mediaType } });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const onPromoted = new Redis({ host: '127.0.0.1', port: promoted });
    try {
      // The new tag record is written to the promoted master (wharf's writes are fire-and-forget
      // for links; the tag record is awaited before the answer).
      let found = false;
      for (const deadline = Date.now() + 5000; !found && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
        found = (await onPromoted.keys('wharf:tag:docker.io/library/app:later')).length === 1;
      }
      expect(found).toBe(true);
    } finally {
      onPromoted.disconnect();
    }
  });
});
