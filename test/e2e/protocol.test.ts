// The pull-side protocol as a client sees it through wharf: exact headers, HEAD, Range, errors,
// tag freshness and revalidation, outages, restarts and corrupt upstream bytes.
import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';

type Upstream = Awaited<ReturnType<typeof startUpstreamRegistry>>;
type OciErrors = { errors: Array<{ code: string; message: string }> };

const image = makeImage({ name: 'proto', files: { 'a.txt': 'protocol test\n' }, extraLayerBytes: 1 << 20 });
const v2 = makeImage({ name: 'proto-v2', files: { 'a.txt': 'second version\n' } });
const bigLayer = image.layers[image.layers.length - 1]!;
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const errorCode = async (res: Response) => ((await res.json()) as OciErrors).errors[0]?.code;

describe('registry protocol through wharf', () => {
  let upstream: Upstream;
  let proxy: FaultProxy;
  let wharf: TestWharf;
  const upstreamLog = () => proxy.requests;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/proto', 'latest', image);
    await pushImage(upstream.url, 'library/proto', 'moving', image);
    for (const t of ['b', 'a', 'c', 'd']) await pushImage(upstream.url, 'library/tagged', t, v2);
    proxy = await startFaultProxy(upstream.url);
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: proxy.url, default: true }], tagTtlSeconds: 1 });
  });

  afterAll(async () => {
    await wharf?.stop();
    await proxy?.stop();
    await upstream?.stop();
  });

  it('serves a manifest with its exact bytes and headers, and HEAD with the same headers and no body', async () => {
    const url = `${wharf.url}/v2/library/proto/manifests/latest`;
    const get = await fetch(url);
    expect(get.status).toBe(200);
    const body = Buffer.from(await get.arrayBuffer());
    expect(body.equals(image.manifest.body)).toBe(true);
    expect(get.headers.get('content-type')).toBe(image.manifest.mediaType);
    expect(get.headers.get('docker-content-digest')).toBe(image.manifest.digest);
    expect(get.headers.get('content-length')).toBe(String(body.length));
    expect(get.headers.get('etag')).toBe(`"${image.manifest.digest}"`);
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    for (const h of ['content-type', 'docker-content-digest', 'content-length', 'etag']) expect(head.headers.get(h)).toBe(get.headers.get(h));
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    const byDigest = await fetch(`${wharf.url}/v2/library/proto/manifests/${image.manifest.digest}`);
    expect(byDigest.headers.get('x-wharf-cache')).toBe('hit');
  });

  it('answers HEAD of an uncached blob with its size without downloading it', async () => {
    const before = upstreamLog().length;
    const head = await fetch(`${wharf.url}/v2/library/proto/blobs/${bigLayer.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(bigLayer.body.length));
    expect(head.headers.get('docker-content-digest')).toBe(bigLayer.digest);
    const asked = upstreamLog().slice(before);
    expect(asked.map((r) => r.method)).toEqual(['HEAD']);
    const files = await readdir(join(wharf.dataDir, 'blobs', 'sha256')).catch(() => []);
    expect(files).not.toContain(bigLayer.digest.slice(7, 9));
  });

  it('serves a Range of an uncached blob, then caches the whole blob once', async () => {
    const before = upstreamLog().filter((r) => r.method === 'GET').length;
    const res = await fetch(`${wharf.url}/v2/library/proto/blobs/${bigLayer.digest}`, { headers: { range: 'bytes=100-199' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 100-199/${bigLayer.body.length}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(bigLayer.body.subarray(100, 200))).toBe(true);
    await wharf.deps.blobs.settled();
    const full = await fetch(`${wharf.url}/v2/library/proto/blobs/${bigLayer.digest}`);
    expect(full.headers.get('x-wharf-cache')).toBe('hit');
    expect(sha256(Buffer.from(await full.arrayBuffer()))).toBe(bigLayer.digest);
    expect(upstreamLog().filter((r) => r.method === 'GET').length - before).toBe(1);
  });

  it('serves Ranges of a cached blob: suffix, clamped, and 416', async () => {
    const url = `${wharf.url}/v2/library/proto/blobs/${bigLayer.digest}`;
    const size = bigLayer.body.length;
    const suffix = await fetch(url, { headers: { range: 'bytes=-10' } });
    expect(suffix.status).toBe(206);
    expect(Buffer.from(await suffix.arrayBuffer()).equals(bigLayer.body.subarray(size - 10))).toBe(true);
    const clamped = await fetch(url, { headers: { range: `bytes=${size - 5}-${size + 1000}` } });
    expect(clamped.headers.get('content-range')).toBe(`bytes ${size - 5}-${size - 1}/${size}`);
    await clamped.arrayBuffer();
    const bad = await fetch(url, { headers: { range: `bytes=${size}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe(`bytes */${size}`);
    await bad.arrayBuffer();
  });

  it('returns OCI errors with the right status for bad input, unknown content and writes', async () => {
    const cases: Array<[string, RequestInit, number, string]> = [
      ['/v2/library/proto/manifests/sha256:totallywrong', {}, 400, 'DIGEST_INVALID'],
      ['/v2/library/proto/manifests/.INVALID_MANIFEST_NAME', {}, 404, 'MANIFEST_UNKNOWN'],
      ['/v2/library/proto/manifests/nosuchtag', {}, 404, 'MANIFEST_UNKNOWN'],
      ['/v2/library/nosuchrepo/manifests/latest', {}, 404, 'MANIFEST_UNKNOWN'],
      [`/v2/library/proto/blobs/${sha256(Buffer.from('hello world'))}`, {}, 404, 'BLOB_UNKNOWN'],
      ['/v2/library/proto/blobs/sha256:abc', {}, 400, 'DIGEST_INVALID'],
      ['/v2/Library/Proto/manifests/latest', {}, 400, 'NAME_INVALID'],
      ['/v2/library/proto/manifests/latest', { method: 'PUT', body: '{}' }, 405, 'UNSUPPORTED'],
      ['/v2/library/proto/manifests/latest', { method: 'DELETE' }, 405, 'UNSUPPORTED'],
      ['/v2/library/proto/blobs/uploads/', { method: 'POST' }, 405, 'UNSUPPORTED'],
      ['/v2/library/proto/tags/list?n=abc', {}, 400, 'PAGINATION_NUMBER_INVALID'],
      ['/v2/library/proto/nonsense', {}, 404, 'NAME_UNKNOWN'],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await fetch(`${wharf.url}${path}`, init);
      expect({ path, status: res.status }).toEqual({ path, status });
      expect({ path, code: await errorCode(res) }).toEqual({ path, code });
    }
  });

  it('lists tags sorted, with n, last and a Link to the next page', async () => {
    const all = await fetch(`${wharf.url}/v2/library/tagged/tags/list`);
    expect(await all.json()).toEqual({ name: 'library/tagged', tags: ['a', 'b', 'c', 'd'] });
    const page = await fetch(`${wharf.url}/v2/library/tagged/tags/list?n=2`);
    expect(await page.json()).toEqual({ name: 'library/tagged', tags: ['a', 'b'] });
    expect(page.headers.get('link')).toBe('</v2/library/tagged/tags/list?n=2&last=b>; rel="next"');
    const next = await fetch(`${wharf.url}/v2/library/tagged/tags/list?n=2&last=b`);
    expect(await next.json()).toEqual({ name: 'library/tagged', tags: ['c', 'd'] });
    expect(next.headers.get('link')).toBeNull();
  });

  it('serves a fresh tag without asking upstream, then revalidates it with HEAD only', async () => {
    const url = `${wharf.url}/v2/library/proto/manifests/moving`;
    expect((await fetch(url)).headers.get('x-wharf-cache')).toBe('miss');
    const before = upstreamLog().length;
    const fresh = await fetch(url);
    expect(fresh.headers.get('x-wharf-cache')).toBe('hit');
    expect(upstreamLog().length).toBe(before);
    await new Promise((r) => setTimeout(r, 1100));
    const revalidated = await fetch(url);
    expect(revalidated.headers.get('x-wharf-cache')).toBe('revalidated');
    expect(upstreamLog().slice(before).map((r) => `${r.method} ${r.path}`)).toEqual(['HEAD /v2/library/proto/manifests/moving']);
  });

  it('follows a tag that moved upstream after the freshness window', async () => {
    const url = `${wharf.url}/v2/library/proto/manifests/moving`;
    await fetch(url);
    await pushImage(upstream.url, 'library/proto', 'moving', v2);
    expect((await fetch(url)).headers.get('docker-content-digest')).toBe(image.manifest.digest);
    await new Promise((r) => setTimeout(r, 1100));
    const moved = await fetch(url);
    expect(moved.headers.get('docker-content-digest')).toBe(v2.manifest.digest);
    expect(Buffer.from(await moved.arrayBuffer()).equals(v2.manifest.body)).toBe(true);
  });

  it.each([
    [503, 503, 'UNAVAILABLE'],
    [500, 503, 'UNAVAILABLE'],
    [429, 429, 'TOOMANYREQUESTS'],
  ])('serves the cached tag (stale) when the upstream answers %i, and %i for what it never had', async (upstreamStatus, status, code) => {
    await fetch(`${wharf.url}/v2/library/proto/manifests/latest`);
    await new Promise((r) => setTimeout(r, 1100));
    proxy.failWith = upstreamStatus;
    try {
      const stale = await fetch(`${wharf.url}/v2/library/proto/manifests/latest`);
      expect(stale.status).toBe(200);
      expect(stale.headers.get('x-wharf-cache')).toBe('stale');
      expect(stale.headers.get('docker-content-digest')).toBe(image.manifest.digest);
      const uncached = await fetch(`${wharf.url}/v2/library/proto/manifests/never-pulled`);
      expect(uncached.status).toBe(status);
      expect(await errorCode(uncached)).toBe(code);
    } finally {
      proxy.failWith = undefined;
    }
  });

  it('does not cache a blob whose bytes do not match its digest, and cuts the client stream', async () => {
    const other = makeImage({ name: 'corrupt', files: { 'c.txt': 'corrupt me\n' }, extraLayerBytes: 256 << 10 });
    await pushImage(upstream.url, 'library/corrupt', 'latest', other);
    const layer = other.layers[other.layers.length - 1]!;
    proxy.corruptBlobs = true;
    try {
      const res = await fetch(`${wharf.url}/v2/library/corrupt/blobs/${layer.digest}`);
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
      await wharf.deps.blobs.settled();
      expect(await wharf.deps.blobStore.stat(layer.digest)).toBeUndefined();
    } finally {
      proxy.corruptBlobs = false;
    }
    const good = await fetch(`${wharf.url}/v2/library/corrupt/blobs/${layer.digest}`);
    expect(sha256(Buffer.from(await good.arrayBuffer()))).toBe(layer.digest);
  });
});

describe('wharf with its upstream gone', () => {
  it('answers 503 UNAVAILABLE (never 404) for uncached content and keeps serving the cache across a restart', async () => {
    const upstream = await startUpstreamRegistry();
    const img = makeImage({ name: 'gone', files: { 'g.txt': 'gone\n' } });
    await pushImage(upstream.url, 'library/gone', 'latest', img);
    let wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], tagTtlSeconds: 0 });
    const dataDir = wharf.dataDir;
    try {
      const pulled = await fetch(`${wharf.url}/v2/library/gone/manifests/latest`);
      expect(pulled.status).toBe(200);
      for (const layer of [img.config, ...img.layers]) await (await fetch(`${wharf.url}/v2/library/gone/blobs/${layer.digest}`)).arrayBuffer();
    } finally {
      await upstream.stop();
      await wharf.close(1000);
    }
    wharf = await startWharf({ dataDir, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], tagTtlSeconds: 0 });
    try {
      const tag = await fetch(`${wharf.url}/v2/library/gone/manifests/latest`);
      expect(tag.status).toBe(200);
      expect(tag.headers.get('x-wharf-cache')).toBe('stale');
      const layer = img.layers[0]!;
      const blob = await fetch(`${wharf.url}/v2/library/gone/blobs/${layer.digest}`);
      expect(sha256(Buffer.from(await blob.arrayBuffer()))).toBe(layer.digest);
      const missing = await fetch(`${wharf.url}/v2/library/other/manifests/latest`);
      expect(missing.status).toBe(503);
      expect(await errorCode(missing)).toBe('UNAVAILABLE');
      const missingBlob = await fetch(`${wharf.url}/v2/library/gone/blobs/${sha256(Buffer.from('x'))}`);
      expect(missingBlob.status).toBe(503);
    } finally {
      await wharf.stop();
      await rm(dataDir, { recursive: true, force: true }); // the first wharf's, kept for the second
    }
  });
});
