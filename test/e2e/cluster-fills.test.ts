// Replicas in a cluster without S3 (each with its own disk) on one Redis: a herd spread over
// them costs one upstream download, the others streaming it from the winner; with Redis away,
// each replica fills alone and every client still gets the whole blob. Both thread modes.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBlobUpstream, type BlobUpstream } from '../support/blob-upstream.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { pseudoRandomBytes, sha256 } from '../support/test-images.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { freePort } from '../support/free-port.ts';
import { metricValue } from '../support/metrics.ts';
import { renderedDom } from '../support/chromium.ts';
import { createTestCa } from '../support/test-ca.ts';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, request as undiciRequest } from 'undici';

describe.each([1, 2])('fills shared by two replicas without S3 (threads: %i)', (threads) => {
  let upstream: BlobUpstream;
  let redis: RedisServer;
  let dir: TempDir;
  let replicas: TestWharf[];

  beforeAll(async () => {
    upstream = await startBlobUpstream();
    redis = await startRedisServer();
    dir = await makeTempDir('wharf-cluster-fills-');
    await writeFile(join(dir.path, 'secret'), 'cluster-fills-test-secret-0123456789abcdef\n');
    replicas = [];
    for (const name of ['a', 'b']) {
      const port = await freePort();
      replicas.push(
        await startWharf({
          threads,
          listen: `127.0.0.1:${port}`,
          redisUrl: redis.url,
          cluster: { advertiseUrl: `http://127.0.0.1:${port}`, secretFile: join(dir.path, 'secret'), replicaName: name, leaseMs: 2000 },
          upstreams: [{ name: 'docker.io', url: upstream.url, default: true }],
        }),
      );
    }
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await redis?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  const fetchAll = (digest: string, clients: number) =>
    Promise.all(
      Array.from({ length: clients }, async (_, i) => {
        const res = await fetch(`${replicas[i % replicas.length]!.url}/v2/library/app/blobs/${digest}`);
        return { status: res.status, digest: sha256(Buffer.from(await res.arrayBuffer())) };
      }),
    );

  it('a herd over both replicas costs one upstream GET; the follower keeps its own copy', async () => {
    const body = pseudoRandomBytes(`cluster-herd-${threads}`, 2 << 20);
    // 64 KiB every 20 ms: the fill takes about 0.7 s, so every client arrives while it runs.
    const digest = upstream.serve(body, { kind: 'drip', bytes: 64 << 10, everyMs: 20 });
    const results = await fetchAll(digest, 12);
    for (const r of results) expect(r).toEqual({ status: 200, digest });
    expect(upstream.gets(digest)).toBe(1);
    const [a, b] = replicas as [TestWharf, TestWharf];
    // Clients get the last byte once it is verified; the fills count their bytes when committed.
    await Promise.all(replicas.map((r) => r.deps.blobs.settled()));
    const followed = (await metricValue(a.url, 'wharf_fill_leases_total', { outcome: 'followed' })) + (await metricValue(b.url, 'wharf_fill_leases_total', { outcome: 'followed' }));
    expect(followed).toBe(1);
    expect((await metricValue(a.url, 'wharf_blob_fill_bytes_total', { origin: 'peer' })) + (await metricValue(b.url, 'wharf_blob_fill_bytes_total', { origin: 'peer' }))).toBe(body.length);
    // Both disks hold it now: asking again costs nobody anything.
    for (const r of await fetchAll(digest, 4)) expect(r).toEqual({ status: 200, digest });
    expect(upstream.gets(digest)).toBe(1);
  });

  it('shows the replicas it knows, from their heartbeats, on the status page', async () => {
    const status = (await (await fetch(`${replicas[0]!.url}/status.json`)).json()) as { replicas: Array<{ name: string; url: string; alive: boolean; self: boolean; figures: { servedBytes: number } }> };
    expect(status.replicas.map((r) => [r.name, r.alive, r.self])).toEqual([
      ['a', true, true],
      ['b', true, false],
    ]);
    expect(status.replicas[1]!.url).toBe(replicas[1]!.url);
    // In a real browser: the page's script fills in one row per replica and one for them all.
    const dom = await renderedDom(`${replicas[0]!.url}/`);
    const rows = /id="replicas">(.*?)<\/tbody>/s.exec(dom)![1]!;
    expect(rows).toContain('<td>a (this one)</td><td class="reachable">up</td>');
    expect(rows).toContain(`<td>b</td><td class="reachable">up</td><td>${replicas[1]!.url}</td>`);
    expect(rows).toContain('<td>all replicas</td>');
  });

  it('with Redis away, each replica fills alone and every client gets the whole blob', async () => {
    const body = pseudoRandomBytes(`cluster-alone-${threads}`, 1 << 20);
    const digest = upstream.serve(body, { kind: 'drip', bytes: 64 << 10, everyMs: 20 });
    redis.pause();
    try {
      const results = await fetchAll(digest, 6);
      for (const r of results) expect(r).toEqual({ status: 200, digest });
      expect(upstream.gets(digest)).toBe(2);
      for (const r of replicas) expect(await metricValue(r.url, 'wharf_fill_leases_total', { outcome: 'unavailable' })).toBeGreaterThanOrEqual(1);
    } finally {
      redis.resume();
    }
  });
});

describe('replicas that listen only on HTTPS', () => {
  let upstream: BlobUpstream;
  let redis: RedisServer;
  let dir: TempDir;
  const started: TestWharf[] = [];

  beforeAll(async () => {
    upstream = await startBlobUpstream();
    redis = await startRedisServer();
    dir = await makeTempDir('wharf-cluster-tls-');
    await writeFile(join(dir.path, 'secret'), 'cluster-tls-test-secret-0123456789abcdef\n');
  });

  afterAll(async () => {
    await Promise.all(started.map((r) => r.stop()));
    await redis?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  /** Two TLS-only replicas with a private CA's certificates, told that CA (caFile) or not; and a client trusting it. */
  async function pair(prefix: string, trustCa: boolean): Promise<{ urls: string[]; client: Agent }> {
    const ca = await createTestCa(dir.path, `ca-${prefix}`);
    const server = await ca.issue('localhost', { usage: 'server' });
    const urls: string[] = [];
    for (const name of ['a', 'b']) {
      const port = await freePort();
      const wharf = await startWharf({
        listen: 'off',
        tls: { certFile: server.certPath, keyFile: server.keyPath, listen: `127.0.0.1:${port}` },
        redis: { url: redis.url, keyPrefix: `${prefix}:` },
        cluster: { advertiseUrl: `https://127.0.0.1:${port}`, secretFile: join(dir.path, 'secret'), replicaName: name, ...(trustCa && { caFile: ca.certPath }) },
        upstreams: [{ name: 'docker.io', url: upstream.url, default: true }],
      });
      started.push(wharf);
      urls.push(wharf.tls!.url);
    }
    return { urls, client: new Agent({ connect: { ca: await readFile(ca.certPath, 'utf8') } }) };
  }

  const herd = (set: { urls: string[]; client: Agent }, digest: string) =>
    Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const res = await undiciRequest(`${set.urls[i % 2]}/v2/library/app/blobs/${digest}`, { dispatcher: set.client });
        return sha256(Buffer.from(await res.body.arrayBuffer()));
      }),
    );
  const leaseOutcomes = async (set: { urls: string[]; client: Agent }, outcome: string) => {
    let total = 0;
    for (const url of set.urls) {
      const text = await (await undiciRequest(`${url}/metrics`, { dispatcher: set.client })).body.text();
      total += Number(new RegExp(`^wharf_fill_leases_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    }
    return total;
  };

  it('follow each other over HTTPS when told the CA; when not, each fetches, never wrongly', async () => {
    const trusted = await pair('trusted', true);
    const untrusted = await pair('untrusted', false);
    try {
      const one = upstream.serve(pseudoRandomBytes('tls-peers-1', 1 << 20), { kind: 'drip', bytes: 64 << 10, everyMs: 20 });
      expect(await herd(trusted, one)).toEqual(Array(6).fill(one));
      expect(upstream.gets(one)).toBe(1);
      expect(await leaseOutcomes(trusted, 'followed')).toBe(1);
      const two = upstream.serve(pseudoRandomBytes('tls-peers-2', 1 << 20), { kind: 'drip', bytes: 64 << 10, everyMs: 20 });
      expect(await herd(untrusted, two)).toEqual(Array(6).fill(two));
      expect(upstream.gets(two)).toBe(2);
      expect(await leaseOutcomes(untrusted, 'peer-failed')).toBe(1);
    } finally {
      await Promise.all([trusted.client.close(), untrusted.client.close()]);
    }
  });
});
