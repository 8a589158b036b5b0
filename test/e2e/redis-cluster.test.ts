// Redis Cluster as the manifest store: records spread over three masters. A second wharf on the
// same cluster, offline, answers every tag the first one cached: the records are in the cluster,
// found whichever master holds them.
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, type TestImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';

const TAGS = 12;
const images: TestImage[] = Array.from({ length: TAGS }, (_, i) => makeImage({ name: `cluster-${i}`, files: { 'n.txt': `${i}\n` } }));

describe('Redis Cluster', () => {
  let upstream: UpstreamRegistry;
  let cluster: RedisCluster;
  const wharfs: TestWharf[] = [];

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    for (const [i, image] of images.entries()) await pushImage(upstream.url, `team/app${i}`, 'v1', image);
    cluster = await startRedisCluster();
  });

  afterAll(async () => {
    for (const w of wharfs) await w.stop();
    await cluster?.stop();
    await upstream?.stop();
  });

  it('stores records on every master, and another wharf on the cluster answers them without the upstream', async () => {
    const online = await startWharf({ redis: { cluster: cluster.nodes }, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
    wharfs.push(online);
    for (let i = 0; i < TAGS; i++) {
      const res = await fetch(`${online.url}/v2/team/app${i}/manifests/v1`, { headers: { accept: images[i]!.manifest.mediaType } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    // The records went to more than one master (slots spread the keys).
    const client = cluster.client();
    try {
      await once(client, 'ready');
      const sizes = await Promise.all(client.nodes('master').map((n) => n.dbsize()));
      expect(sizes.filter((n) => n > 0).length).toBeGreaterThan(1);
    } finally {
      client.disconnect();
    }
    const offline = await startWharf({ offline: true, redis: { cluster: cluster.nodes }, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
    wharfs.push(offline);
    for (let i = 0; i < TAGS; i++) {
      const res = await fetch(`${offline.url}/v2/team/app${i}/manifests/v1`, { headers: { accept: images[i]!.manifest.mediaType } });
      expect(res.status, `app${i}`).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(images[i]!.manifest.body)).toBe(true);
    }
  });
});
