// threads: 2: a hit thread shares the public port with the main thread (SO_REUSEPORT). It must
// answer what the cache holds exactly as the main thread would, hand everything else over
// without breaking single-flight fills or tag freshness, and be counted once in /metrics.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, sha256 } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startTcpFaults, type TcpFaults } from '../support/tcp-faults.ts';

const TAG_TTL_SECONDS = 2;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const first = makeImage({ name: 'threads-v1', files: { 'v.txt': 'one\n' }, extraLayerBytes: 256 << 10 });
const second = makeImage({ name: 'threads-v2', files: { 'v.txt': 'two\n' } });
const herdImage = makeImage({ name: 'threads-herd', files: { 'h.txt': 'herd\n' }, extraLayerBytes: 2 << 20 });

describe('hit threads (threads: 2)', () => {
  let upstream: UpstreamRegistry;
  let link: TcpFaults;
  let wharf: TestWharf;
  let requestsMade = 0;

  // Each request on its own connection, so the kernel spreads them over both threads.
  const get = async (path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') => {
    requestsMade++;
    const agent = new Agent({ pipelining: 0 });
    try {
      const res = await request(`${wharf.url}${path}`, { method, headers: { accept: ACCEPT, ...headers }, dispatcher: agent });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers, body };
    } finally {
      await agent.close();
    }
  };
  const requestsCounted = async (registryText: string) =>
    [...registryText.matchAll(/^wharf_requests_total\{[^}]*kind="(?:manifest|blob|base)"[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/app', 'latest', first);
    await pushImage(upstream.url, 'library/herd', 'latest', herdImage);
    link = await startTcpFaults({ host: '127.0.0.1', port: upstream.port });
    wharf = await startWharf({ threads: 2, tagTtlSeconds: TAG_TTL_SECONDS, upstreams: [{ name: 'docker.io', url: link.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await link?.stop();
    await upstream?.stop();
  });

  it('answers cached manifests and blobs on both threads, byte for byte, each request counted once', async () => {
    const layer = first.layers.at(-1)!;
    expect((await get('/v2/app/manifests/latest')).status).toBe(200);
    expect((await get(`/v2/app/blobs/${layer.digest}`)).status).toBe(200);
    for (let i = 0; i < 40; i++) {
      const manifest = await get('/v2/app/manifests/latest');
      expect(manifest.status).toBe(200);
      expect(manifest.headers['docker-content-digest']).toBe(first.manifest.digest);
      expect(manifest.headers['content-type']).toBe(first.manifest.mediaType);
      expect(manifest.body.equals(first.manifest.body)).toBe(true);
      const blob = await get(`/v2/app/blobs/${layer.digest}`);
      expect(blob.status).toBe(200);
      expect(sha256(blob.body)).toBe(layer.digest);
      const head = await get(`/v2/app/blobs/${layer.digest}`, {}, 'HEAD');
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBe(String(layer.body.length));
      expect(head.body).toHaveLength(0);
      const range = await get(`/v2/app/blobs/${layer.digest}`, { range: 'bytes=100-199' });
      expect(range.status).toBe(206);
      expect(range.body.equals(layer.body.subarray(100, 200))).toBe(true);
    }
    await upstream.settleLog();
    expect(upstream.requestLog().filter((e) => e.method === 'GET' && e.path.endsWith(layer.digest))).toHaveLength(1);

    const everyThread = await requestsCounted(await (await fetch(`${wharf.url}/metrics`)).text());
    const mainThreadOnly = await requestsCounted(await wharf.deps.metrics.registry.metrics());
    expect(everyThread).toBe(requestsMade);
    // With 160 connections spread by the kernel, the hit thread took its share.
    expect(mainThreadOnly).toBeLessThan(requestsMade - 20);
  });

  it('fills an uncached blob once for clients on both threads, streaming to all of them', async () => {
    const layer = herdImage.layers.at(-1)!;
    link.setBandwidth(4 << 20); // the fill takes about half a second
    try {
      const results = await Promise.all(Array.from({ length: 16 }, () => get(`/v2/herd/blobs/${layer.digest}`)));
      for (const r of results) {
        expect(r.status).toBe(200);
        expect(sha256(r.body)).toBe(layer.digest);
      }
    } finally {
      link.setBandwidth(undefined);
    }
    await upstream.settleLog();
    expect(upstream.requestLog().filter((e) => e.method === 'GET' && e.path.endsWith(layer.digest))).toHaveLength(1);
  });

  it('serves a retagged image on every thread once the tag is due for revalidation', async () => {
    expect((await get('/v2/app/manifests/latest')).headers['docker-content-digest']).toBe(first.manifest.digest);
    await pushImage(upstream.url, 'library/app', 'latest', second);
    await new Promise((r) => setTimeout(r, TAG_TTL_SECONDS * 1000 + 200));
    for (let i = 0; i < 30; i++) {
      const res = await get('/v2/app/manifests/latest');
      expect(res.status).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(second.manifest.digest);
    }
  });

  it('hands the operator endpoints and errors to the main thread', async () => {
    for (let i = 0; i < 10; i++) {
      expect((await get('/healthz')).status).toBe(200);
      const missing = await get('/v2/app/manifests/no-such-tag');
      expect(missing.status).toBe(404);
      expect(JSON.parse(missing.body.toString()).errors[0].code).toBe('MANIFEST_UNKNOWN');
    }
  });
});
