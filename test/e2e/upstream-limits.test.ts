// Protecting the upstream (upstreams[].limits, and a 429's Retry-After): a cold herd of 200
// blobs never has more than 4 requests in flight at the upstream and every client still gets
// its blob; a 429 with Retry-After stops all requests to it until then, cached tags being
// served stale meanwhile; a revalidation stuck in line serves the cached copy and is given up,
// adding no load. Both thread modes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBlobUpstream, type BlobUpstream } from '../support/blob-upstream.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { makeImage, pseudoRandomBytes, sha256 } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each([1, 2])('a herd against an upstream capped at 4 in flight (threads: %i)', (threads) => {
  let upstream: BlobUpstream;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startBlobUpstream();
    wharf = await startWharf({ threads, upstreams: [{ name: 'docker.io', url: upstream.url, default: true, limits: { maxConcurrent: 4 } }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  it('never has more than 4 requests in flight upstream, and every one of 200 cold blobs arrives whole', async () => {
    // 16 KiB each, dripped 4 KiB every 10 ms: each download holds its turn for about 40 ms.
    const digests = Array.from({ length: 200 }, (_, i) => upstream.serve(pseudoRandomBytes(`limits-${threads}-${i}`, 16 << 10), { kind: 'drip', bytes: 4 << 10, everyMs: 10 }));
    const results = await Promise.all(
      digests.map(async (digest) => {
        const res = await fetch(`${wharf.url}/v2/library/app/blobs/${digest}`);
        return { status: res.status, digest: sha256(Buffer.from(await res.arrayBuffer())) };
      }),
    );
    expect(results).toEqual(digests.map((digest) => ({ status: 200, digest })));
    expect(upstream.maxInFlight()).toBe(4);
    for (const digest of digests) expect(upstream.gets(digest)).toBe(1);
  });
});

describe('a 429 and a full line at the upstream', () => {
  let registry: UpstreamRegistry;
  let proxy: FaultProxy;
  let wharf: TestWharf;
  const images = [0, 1].map((i) => makeImage({ name: `limits-tag-${i}`, files: { 'l.txt': `${i}\n` }, extraLayerBytes: i === 1 ? 2 << 20 : 0 }));

  beforeAll(async () => {
    registry = await startUpstreamRegistry();
    for (const [i, image] of images.entries()) await pushImage(registry.url, 'library/app', `t${i}`, image);
    proxy = await startFaultProxy(registry.url);
    wharf = await startWharf({ tagTtlSeconds: 1, upstreams: [{ name: 'docker.io', url: proxy.url, default: true, limits: { maxConcurrent: 1 } }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await proxy?.stop();
    await registry?.stop();
  });

  const pull = async (tag: string, image: (typeof images)[number]) => {
    const res = await fetch(`${wharf.url}/v2/library/app/manifests/${tag}`, { headers: { accept: image.manifest.mediaType } });
    await res.arrayBuffer();
    return { status: res.status, cache: res.headers.get('x-wharf-cache'), retryAfter: res.headers.get('retry-after') };
  };
  const sent = () => proxy.requests.length;

  it('sends the upstream nothing until a 429 Retry-After has passed, serving cached tags stale', async () => {
    expect(await pull('t0', images[0]!)).toMatchObject({ status: 200, cache: 'miss' });
    await sleep(1100);
    proxy.failWith = 429;
    proxy.addHeaders = { 'Retry-After': '2' };
    expect(await pull('t0', images[0]!)).toMatchObject({ status: 200, cache: 'stale' });
    proxy.failWith = undefined;
    proxy.addHeaders = {};
    const before = sent();
    // Within Retry-After: no request goes out; a tag never cached is refused with the time left.
    expect(await pull('t0', images[0]!)).toMatchObject({ status: 200, cache: 'stale' });
    const uncached = await pull('t1', images[1]!);
    expect(uncached.status).toBe(429);
    expect(Number(uncached.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(sent()).toBe(before);
    await sleep(2100);
    expect(await pull('t0', images[0]!)).toMatchObject({ status: 200, cache: 'revalidated' });
    expect(sent()).toBeGreaterThan(before);
  });

  it('serves a cached tag stale rather than queue its revalidation behind a download, and gives that revalidation up', async () => {
    await sleep(1100); // t0 is due for revalidation
    // The one turn is held by a slow download: the 2 MiB layer through a proxy that drips it.
    const layer = images[1]!.layers.at(-1)!;
    expect((await pull('t1', images[1]!)).status).toBe(200);
    proxy.dripBlobs = { bytes: 64 << 10, everyMs: 100 }; // ~3 s for the layer
    const download = fetch(`${wharf.url}/v2/library/app/blobs/${layer.digest}`).then(async (res) => sha256(Buffer.from(await res.arrayBuffer())));
    await sleep(200);
    const heads = () => proxy.requests.filter((r) => r.method === 'HEAD' && r.path.endsWith('/manifests/t0')).length;
    const headsBefore = heads();
    const started = Date.now();
    expect(await pull('t0', images[0]!)).toMatchObject({ status: 200, cache: 'stale' });
    expect(Date.now() - started).toBeLessThan(2500); // within the stale budget (1.5 s), not after the download
    expect(await download).toBe(layer.digest);
    proxy.dripBlobs = undefined;
    await sleep(300);
    expect(heads()).toBe(headsBefore); // the revalidation never went out
  });
});
