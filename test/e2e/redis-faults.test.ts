// wharf's own manifest store failing: Redis killed under load, hung (SIGSTOP), and back again.
// Clients must not notice beyond latency: answers come from memory or straight from upstream.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, type TestImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { pullProblem, pullProblemsWhile } from '../support/pull-check.ts';
import { metricValue } from '../support/metrics.ts';

const TAGS = 12;
const images: TestImage[] = Array.from({ length: TAGS }, (_, i) => makeImage({ name: `redisfault-${i}`, files: { 'n.txt': `${i}\n` } }));
const neverAsked = makeImage({ name: 'redisfault-hung', files: { 'h.txt': 'hung\n' } });

describe('Redis faults under load', () => {
  let upstream: UpstreamRegistry;
  let redis: RedisServer;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    for (const [i, image] of images.entries()) await pushImage(upstream.url, 'library/app', `t${i}`, image);
    await pushImage(upstream.url, 'library/hung', 'latest', neverAsked);
    redis = await startRedisServer();
    wharf = await startWharf({ redisUrl: redis.url, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
  });

  afterAll(async () => {
    redis?.resume();
    await wharf?.stop();
    await redis?.stop();
    await upstream?.stop();
  });

  const pullOne = (i: number) => pullProblem(wharf.url, 'library/app', `t${i}`, images[i]!);

  it('keeps every request succeeding while Redis is killed, and writes to it again once it is back', async () => {
    // Half the tags are cached before the crash; the other half are first asked for during it.
    for (let i = 0; i < TAGS / 2; i++) expect(await pullOne(i)).toBeUndefined();
    const errorsBefore = await metricValue(wharf.url, 'wharf_manifest_store_errors_total', { backend: 'redis' });

    let tagsInPlay = TAGS / 2;
    const port = redis.port;
    const failures = await pullProblemsWhile(8, (n) => pullOne(n % tagsInPlay), async () => {
      redis.kill();
      await new Promise((r) => setTimeout(r, 200));
      tagsInPlay = TAGS; // now also tags and blobs the store has never seen
    });
    expect(failures).toEqual([]);
    expect(await metricValue(wharf.url, 'wharf_manifest_store_errors_total', { backend: 'redis' })).toBeGreaterThan(errorsBefore);

    // Redis comes back empty on the same port: wharf reconnects by itself and stores again.
    redis = await startRedisServer({ port });
    const direct = new Redis(redis.url);
    try {
      const deadline = Date.now() + 10_000;
      let wharfConnections = 0;
      while (wharfConnections === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        const clients = (await direct.client('LIST')) as string;
        wharfConnections = clients.split('\n').filter((l) => l.includes('addr=') && !l.includes('cmd=client')).length;
      }
      expect(wharfConnections).toBeGreaterThan(0);
      await pushImage(upstream.url, 'library/app', 'after-restart', images[0]!);
      const res = await fetch(`${wharf.url}/v2/library/app/manifests/after-restart`);
      expect(res.status).toBe(200);
      expect(await direct.dbsize()).toBeGreaterThan(0);
    } finally {
      direct.disconnect();
    }
  });

  it('answers while Redis hangs (SIGSTOP), bounded by the command timeout', async () => {
    redis.pause();
    try {
      const started = Date.now();
      // Cached in memory: no Redis needed at all.
      expect(await pullOne(0)).toBeUndefined();
      // A tag never asked for: Redis is asked and times out (reads and writes), the upstream answers.
      const res = await fetch(`${wharf.url}/v2/library/hung/manifests/latest`);
      expect(res.status).toBe(200);
      expect(res.headers.get('docker-content-digest')).toBe(neverAsked.manifest.digest);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      redis.resume();
    }
  });
});
