// Replicas on one Redis share tag revalidations: a tag one replica confirmed with the upstream
// is fresh for the others too, so a tag costs one upstream HEAD per TTL between them rather than
// one per replica. And a replica whose Redis is away still serves its own copy when the upstream
// is away as well.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';

const image = makeImage({ name: 'shared-tag', files: { 's.txt': 'shared\n' } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('tag revalidations shared through Redis', () => {
  let registry: UpstreamRegistry;
  let proxy: FaultProxy;
  let redis: RedisServer;
  let a: TestWharf;
  let b: TestWharf;

  beforeAll(async () => {
    registry = await startUpstreamRegistry();
    await pushImage(registry.url, 'library/shared', 'latest', image);
    proxy = await startFaultProxy(registry.url);
    redis = await startRedisServer();
    const options = { redisUrl: redis.url, tagTtlSeconds: 1, upstreams: [{ name: 'docker.io', url: proxy.url, default: true }] };
    [a, b] = await Promise.all([startWharf(options), startWharf(options)]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    await proxy?.stop();
    await registry?.stop();
  });

  const pull = async (wharf: TestWharf) => {
    const res = await fetch(`${wharf.url}/v2/library/shared/manifests/latest`, { headers: { accept: image.manifest.mediaType } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(image.manifest.body)).toBe(true);
    return res.headers.get('x-wharf-cache');
  };
  const tagRequests = () => proxy.requests.filter((r) => r.path === '/v2/library/shared/manifests/latest').length;

  it('asks the upstream once per TTL for a tag, whichever replica is asked', async () => {
    expect(await pull(a)).toBe('miss');
    expect(await pull(b)).toBe('hit'); // B never saw it: Redis has it, fresh
    const first = tagRequests();
    await sleep(1100);
    expect(await pull(b)).toBe('revalidated'); // the TTL ran out: B asks the upstream
    expect(await pull(a)).toBe('hit'); // A's own copy is due, but B's confirmation is fresh
    expect(tagRequests()).toBe(first + 1);
    await sleep(1100);
    expect(await pull(a)).toBe('revalidated');
    expect(await pull(b)).toBe('hit');
    expect(tagRequests()).toBe(first + 2);
  });

  it('serves its own copy stale when Redis and the upstream are both away', async () => {
    await sleep(1100);
    redis.pause();
    proxy.failWith = 503;
    try {
      expect(await pull(a)).toBe('stale');
    } finally {
      proxy.failWith = undefined;
      redis.resume();
    }
  });
});
