// One upstream fetch per digest, however many clients ask at once, with every waiter streaming
// as bytes land. The upstream link is throttled (TCP proxy) so a fill takes about a second:
// long enough to see whether waiters get bytes early or only at the end.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, sha256, type TestImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startTcpFaults, type TcpFaults } from '../support/tcp-faults.ts';

const BLOB_BYTES = 4 << 20;
const LINK_BYTES_PER_SECOND = 4 << 20; // one fill takes about 1 s
const images: Record<string, TestImage> = Object.fromEntries(
  ['herd', 'leaver', 'range', 'tags'].map((name) => [name, makeImage({ name: `sf-${name}`, files: { 'x.txt': `${name}\n` }, extraLayerBytes: BLOB_BYTES })]),
);
const bigLayer = (name: string) => images[name]!.layers.at(-1)!;

describe('single-flight fills and lookups', () => {
  let upstream: UpstreamRegistry;
  let link: TcpFaults;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    for (const [name, image] of Object.entries(images)) await pushImage(upstream.url, `library/${name}`, 'latest', image);
    link = await startTcpFaults({ host: '127.0.0.1', port: upstream.port });
    link.setBandwidth(LINK_BYTES_PER_SECOND);
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: link.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await link?.stop();
    await upstream?.stop();
  });

  const upstreamGets = async (path: string) => {
    await upstream.settleLog();
    return upstream.requestLog().filter((e) => e.method === 'GET' && e.path === path).length;
  };

  it('serves 24 concurrent clients of one uncached blob from one upstream GET, each streaming early', async () => {
    const layer = bigLayer('herd');
    const path = `/v2/library/herd/blobs/${layer.digest}`;
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 24 }, async () => {
        const res = await request(`${wharf.url}${path}`);
        let firstByteMs: number | undefined;
        const chunks: Buffer[] = [];
        for await (const chunk of res.body) {
          firstByteMs ??= performance.now() - started;
          chunks.push(chunk as Buffer);
        }
        return { status: res.statusCode, length: res.headers['content-length'], body: Buffer.concat(chunks), firstByteMs: firstByteMs!, doneMs: performance.now() - started };
      }),
    );
    const wall = performance.now() - started;
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.length).toBe(String(layer.body.length));
      expect(sha256(r.body)).toBe(layer.digest);
    }
    expect(await upstreamGets(path)).toBe(1);
    // Bytes reach every waiter while the fill runs (the fill alone takes ~1 s), not at its end.
    expect(Math.max(...results.map((r) => r.firstByteMs))).toBeLessThan(wall / 2);
    expect(wall).toBeLessThan(3000);
  });

  it('finishes and caches a fill whose first client left', async () => {
    const layer = bigLayer('leaver');
    const controller = new AbortController();
    const res = await request(`${wharf.url}/v2/library/leaver/blobs/${layer.digest}`, { signal: controller.signal });
    for await (const _ of res.body) break; // one chunk, then gone
    controller.abort();
    await wharf.deps.blobs.settled();
    expect(await wharf.deps.blobStore.stat(layer.digest)).toMatchObject({ size: layer.body.length });
    expect(await upstreamGets(`/v2/library/leaver/blobs/${layer.digest}`)).toBe(1);
  });

  it('answers a Range of an uncached blob before the fill ends, and fills it once', async () => {
    const layer = bigLayer('range');
    const path = `/v2/library/range/blobs/${layer.digest}`;
    const started = performance.now();
    const res = await request(`${wharf.url}${path}`, { headers: { range: 'bytes=100-199' } });
    const part = Buffer.from(await res.body.arrayBuffer());
    const rangeMs = performance.now() - started;
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes 100-199/${layer.body.length}`);
    expect(part.equals(layer.body.subarray(100, 200))).toBe(true);
    expect(rangeMs).toBeLessThan(500);
    await wharf.deps.blobs.settled();
    expect(await wharf.deps.blobStore.stat(layer.digest)).toBeDefined();
    expect(await upstreamGets(path)).toBe(1);
  });

  it('asks the upstream once for a tag and once for its manifest under 20 concurrent requests', async () => {
    const image = images.tags!;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => request(`${wharf.url}/v2/library/tags/manifests/latest`, { headers: { accept: image.manifest.mediaType } })),
    );
    for (const r of results) {
      const body = Buffer.from(await r.body.arrayBuffer());
      expect(r.statusCode, body.toString()).toBe(200);
      expect(body.equals(image.manifest.body)).toBe(true);
    }
    // One request did the work; the others say they joined it.
    expect(results.map((r) => r.headers['x-wharf-cache']).sort()).toEqual([...Array(19).fill('coalesced'), 'miss']);
    await upstream.settleLog();
    const asked = upstream.requestLog().filter((e) => e.path.startsWith('/v2/library/tags/manifests/') && e.method !== 'PUT');
    expect(asked.map((e) => `${e.method} ${e.path}`)).toEqual([
      'HEAD /v2/library/tags/manifests/latest',
      `GET /v2/library/tags/manifests/${image.manifest.digest}`,
    ]);
  });
});
