// Three wharf replicas on one Redis (through a sentinel) and one S3 bucket, in front of a real
// registry behind a slow link: a herd on one uncached blob costs one upstream GET; kill -9 of
// the replica filling a blob leaves every other client with the whole blob and nothing wrong
// in S3; a Sentinel failover under load fails no pull of cached content; a replica started
// empty serves cached images from S3 without asking the upstream. Replica 1 runs threads: 2.
import { createHash } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../src/cache/s3-client.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, type TestImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startRedisSentinelSet, SENTINEL_NAME, type RedisSentinelSet } from '../support/redis-sentinel.ts';
import { startS3Server, type S3Server } from '../support/s3-server.ts';
import { startTcpFaults, type TcpFaults } from '../support/tcp-faults.ts';
import { startReplicas, type Replica, type ReplicaSet } from '../support/wharf-replicas.ts';
import { pullProblem, pullProblemsWhile } from '../support/pull-check.ts';
import { until } from '../support/until.ts';

const MiB = 1 << 20;
const herd = makeImage({ name: 'scale-herd', files: { 'h.txt': 'herd\n' }, extraLayerBytes: 16 * MiB });
const crash = makeImage({ name: 'scale-crash', files: { 'c.txt': 'crash\n' }, extraLayerBytes: 24 * MiB });
const small: TestImage[] = [0, 1, 2].map((i) => makeImage({ name: `scale-small-${i}`, files: { 'n.txt': `${i}\n` } }));

interface Fetched {
  readonly status: number;
  readonly length: number;
  readonly digest: string;
  readonly firstByteMs: number;
  readonly error?: string;
}

/** A blob through a replica: status, bytes and their digest, or the error that cut it. */
async function fetchBlob(url: string, repository: string, digest: string): Promise<Fetched> {
  const started = performance.now();
  let status = 0;
  let length = 0;
  let firstByteMs = Infinity;
  const hash = createHash('sha256');
  try {
    const res = await request(`${url}/v2/${repository}/blobs/${digest}`);
    status = res.statusCode;
    for await (const chunk of res.body) {
      if (length === 0) firstByteMs = performance.now() - started;
      length += (chunk as Buffer).length;
      hash.update(chunk as Buffer);
    }
    return { status, length, digest: `sha256:${hash.digest('hex')}`, firstByteMs };
  } catch (err) {
    return { status, length, digest: '', firstByteMs, error: String(err) };
  }
}

describe('three replicas on Redis (Sentinel) and S3', () => {
  let registry: UpstreamRegistry;
  let link: TcpFaults;
  let redis: RedisSentinelSet;
  let s3: S3Server;
  let set: ReplicaSet;
  /** The replicas still running. */
  let survivors: Replica[] = [];

  beforeAll(async () => {
    registry = await startUpstreamRegistry();
    await pushImage(registry.url, 'library/herd', 'latest', herd);
    await pushImage(registry.url, 'library/crash', 'latest', crash);
    for (const [i, image] of small.entries()) await pushImage(registry.url, 'library/small', `t${i}`, image);
    link = await startTcpFaults({ host: '127.0.0.1', port: registry.port });
    // 8 MiB/s per connection: the 16 MiB herd blob takes 2 s, the crash blob 3 s.
    link.setBandwidth(8 * MiB);
    redis = await startRedisSentinelSet();
    s3 = await startS3Server({ server: 'radosgw' });
    set = await startReplicas({
      upstreamUrl: link.url,
      redis: { sentinels: [redis.sentinel], sentinelName: SENTINEL_NAME },
      s3,
      count: 3,
      threads: [1, 2, 1],
    });
  }, 90_000);

  afterAll(async () => {
    await set?.stop();
    await s3?.stop();
    await redis?.stop();
    await link?.stop();
    await registry?.stop();
  });

  const upstreamGets = async (digest: string) => {
    await registry.settleLog();
    return registry.requestLog().filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`)).length;
  };
  const manifestOf = async (url: string, repository: string, image: TestImage) => {
    const res = await fetch(`${url}/v2/${repository}/manifests/latest`, { headers: { accept: image.manifest.mediaType } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(image.manifest.body)).toBe(true);
  };

  it('48 clients spread over the replicas on one uncached blob: one upstream GET, 48 whole bodies', async () => {
    const blob = herd.layers.at(-1)!;
    await manifestOf(set.replicas[0]!.url, 'library/herd', herd);
    const results = await Promise.all(Array.from({ length: 48 }, (_, i) => fetchBlob(set.replicas[i % 3]!.url, 'library/herd', blob.digest)));
    for (const r of results) expect(r).toMatchObject({ status: 200, length: blob.body.length, digest: blob.digest });
    expect(await upstreamGets(blob.digest)).toBe(1);
    expect(Math.max(...results.map((r) => r.firstByteMs))).toBeLessThanOrEqual(1000);
    // The filler published it: the bucket holds the blob, byte for byte.
    await until(async () => (await s3Object(blob.digest)) !== undefined, 'the blob on S3', 10_000, 100);
    expect(createHash('sha256').update((await s3Object(blob.digest))!).digest('hex')).toBe(blob.digest.slice(7));
    const leases = await replicaMetric(set.replicas.map((r) => r.url), 'wharf_fill_leases_total');
    expect(leases.won).toBe(1);
    expect(leases.followed).toBe(2);
  }, 60_000);

  it('kill -9 of the filling replica mid-fill: the others finish their clients whole, nothing wrong lands in S3', async () => {
    const blob = crash.layers.at(-1)!;
    await manifestOf(set.replicas[0]!.url, 'library/crash', crash);
    const clients = Array.from({ length: 12 }, (_, i) => ({ replica: i % 3, result: fetchBlob(set.replicas[i % 3]!.url, 'library/crash', blob.digest) }));
    const holder = await leaseHolder(blob.digest);
    const victim = set.replicas.findIndex((r) => r.name === holder);
    expect(victim).toBeGreaterThanOrEqual(0);
    await new Promise((r) => setTimeout(r, 800)); // a third of the way in
    await set.replicas[victim]!.kill();
    for (const c of clients) {
      const r = await c.result;
      // Never a short or wrong 200: a body is whole and right, or it was cut (an error).
      if (r.error === undefined) expect(r).toMatchObject({ status: 200, length: blob.body.length, digest: blob.digest });
      if (c.replica !== victim) expect(r).toMatchObject({ status: 200, length: blob.body.length, digest: blob.digest });
    }
    const survivor = set.replicas[(victim + 1) % 3]!;
    expect(await fetchBlob(survivor.url, 'library/crash', blob.digest)).toMatchObject({ status: 200, length: blob.body.length, digest: blob.digest });
    // Every blob in the bucket matches its name (the killed filler never completed its upload).
    for (const digest of await s3Digests()) {
      expect(createHash('sha256').update((await s3Object(digest))!).digest('hex')).toBe(digest.slice(7));
    }
    survivors = set.replicas.filter((_, i) => i !== victim);
    // The survivors took over: from the upstream, the rest of the blob (or all of it, for one
    // that asked the holder after it died), a few downloads at most.
    const leases = await replicaMetric(survivors.map((r) => r.url), 'wharf_fill_leases_total');
    expect((leases['taken-over'] ?? 0) + (leases['peer-failed'] ?? 0)).toBeGreaterThanOrEqual(1);
    expect(await upstreamGets(blob.digest)).toBeLessThanOrEqual(3);
  }, 60_000);

  it('a Sentinel failover under load fails no pull of cached content', async () => {
    const urls = survivors.map((r) => r.url);
    for (const [i, image] of small.entries()) for (const url of urls) expect(await pullProblem(url, 'library/small', `t${i}`, image)).toBeUndefined();
    const pull = (n: number) => pullProblem(urls[n % urls.length]!, 'library/small', `t${n % 3}`, small[n % 3]!);
    expect(await pullProblemsWhile(6, pull, () => redis.failover())).toEqual([]);
  }, 60_000);

  it('a replica started empty serves cached images from S3 without one upstream request', async () => {
    // Every blob of the image went through the set once (the herd fetched only its big layer).
    for (const blob of [herd.config, ...herd.layers]) await fetchBlob(survivors[0]!.url, 'library/herd', blob.digest);
    await until(async () => (await s3Digests()).includes(herd.config.digest), 'the config blob on S3', 10_000, 100);
    await registry.settleLog();
    const before = registry.requestLog().length;
    const fresh = await set.add();
    await manifestOf(fresh.url, 'library/herd', herd);
    for (const blob of [herd.config, ...herd.layers]) {
      expect(await fetchBlob(fresh.url, 'library/herd', blob.digest)).toMatchObject({ status: 200, length: blob.body.length, digest: blob.digest });
    }
    await registry.settleLog();
    expect(registry.requestLog().slice(before)).toEqual([]);
    // Counted as each fill's bookkeeping ends, just after its client got the last byte.
    const total = herd.config.body.length + herd.layers.reduce((n, l) => n + l.body.length, 0);
    await until(async () => (await replicaMetric([fresh.url], 'wharf_blob_fill_bytes_total')).s3 === total, 'the bytes from S3 counted', 5000, 50);
    expect(await replicaMetric([fresh.url], 'wharf_blob_fill_bytes_total')).toEqual({ s3: total });
  }, 60_000);

  /** The replica named by the digest's fill lease, once there is one. */
  async function leaseHolder(digest: string): Promise<string> {
    const master = new Redis({ host: '127.0.0.1', port: await redis.masterPort() });
    try {
      let value: string | null = null;
      await until(async () => (value = await master.get(`wharf:{fill:${digest}}:lease`)) !== null, 'a fill lease', 5000, 20);
      return value!.split('|')[1]!;
    } finally {
      master.disconnect();
    }
  }

  function s3Client() {
    return createS3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  }

  async function s3Object(digest: string): Promise<Buffer | undefined> {
    const client = s3Client();
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `blobs/sha256/${digest.slice(7)}` }));
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch {
      return undefined;
    } finally {
      client.destroy();
    }
  }

  async function s3Digests(): Promise<string[]> {
    const client = s3Client();
    try {
      const out = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'blobs/sha256/' }));
      return (out.Contents ?? []).map((o) => `sha256:${o.Key!.slice('blobs/sha256/'.length)}`);
    } finally {
      client.destroy();
    }
  }
});

/** A counter's value by its one label's value, summed over the replicas. */
async function replicaMetric(urls: readonly string[], name: string): Promise<Record<string, number>> {
  const sums: Record<string, number> = {};
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const m of text.matchAll(new RegExp(`^${name}\\{\\w+="([^"]+)"\\} (\\d+(?:\\.\\d+)?(?:e\\+\\d+)?)$`, 'gm'))) {
      sums[m[1]!] = (sums[m[1]!] ?? 0) + Number(m[2]);
    }
  }
  return sums;
}
