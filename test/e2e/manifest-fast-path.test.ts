// The manifest fast path answers manifests held in memory before the Hono app sees the request.
// Its answers must be the full handler's answers, byte for byte and header for header, and it
// must leave everything else to the full handler untouched.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedManifestStore } from '../../src/cache/embedded-manifest-store.ts';
import { MemoryCachedManifestStore } from '../../src/cache/memory-cached-manifest-store.ts';
import { createLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { TopRepositories } from '../../src/metrics/top-repositories.ts';
import { ManifestFastPath } from '../../src/http/manifest-fast-path.ts';
import { RequestObserver } from '../../src/http/request-observer.ts';
import { registryRequestListener } from '../../src/http/request-listener.ts';
import type { WharfEnv } from '../../src/http/wharf-env.ts';
import { ManifestService } from '../../src/proxy/manifest-service.ts';
import { UpstreamRouter } from '../../src/proxy/upstream-router.ts';
import type { StoredManifest } from '../../src/cache/manifest-store.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf } from '../support/wharf.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { LogLines } from '../support/log-lines.ts';

const image = makeImage({ name: 'fast', files: { 'f.txt': 'fast path\n' } });

/** Headers that describe the answer (not the moment or the request id), as a sorted object. */
function describedBy(res: Response): Record<string, string> {
  const skip = new Set(['date', 'x-request-id', 'keep-alive', 'connection']);
  return Object.fromEntries([...res.headers].filter(([k]) => !skip.has(k)).sort());
}

describe('manifest fast path: the same answers as the full handler', () => {
  let upstream: UpstreamRegistry;
  let data: TempDir;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/fast', 'v1', image);
    data = await makeTempDir('wharf-fast-path-');
    // Fill the cache, then restart: the new process's memory is empty, so its first answer comes
    // from the store through the full handler and the next one from memory through the fast path.
    const first = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], dataDir: data.path });
    for (const path of ['library/fast/manifests/v1', `library/fast/manifests/${image.manifest.digest}`]) await fetch(`${first.url}/v2/${path}`).then((r) => r.arrayBuffer());
    await first.stop();
  });

  afterAll(async () => {
    await upstream?.stop();
    await data?.cleanup();
  });

  it('answers GET and HEAD, by tag, digest, ?ns= and registry in the path, as the full handler does', async () => {
    const paths = [
      '/v2/library/fast/manifests/v1',
      `/v2/library/fast/manifests/${image.manifest.digest}`,
      '/v2/library/fast/manifests/v1?ns=docker.io',
      '/v2/docker.io/library/fast/manifests/v1',
    ];
    for (const path of paths) {
      for (const method of ['GET', 'HEAD']) {
        // A fresh process for each: its memory is empty, so the first answer is the full
        // handler's (from the store) and the second the fast path's (from memory).
        const wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], dataDir: data.path });
        try {
          const full = await fetch(`${wharf.url}${path}`, { method });
          const fullBody = Buffer.from(await full.arrayBuffer());
          const fast = await fetch(`${wharf.url}${path}`, { method, headers: { 'x-request-id': 'ci-42' } });
          const fastBody = Buffer.from(await fast.arrayBuffer());
          expect(fast.status, `${method} ${path}`).toBe(200);
          expect(describedBy(fast), `${method} ${path}`).toEqual(describedBy(full));
          expect(fastBody.equals(fullBody), `${method} ${path}`).toBe(true);
          expect(fast.headers.get('x-request-id')).toBe('ci-42');
          expect(describedBy(await fetch(`${wharf.url}${path}`, { method }))['x-wharf-cache']).toBe('hit');
        } finally {
          await wharf.stop();
        }
      }
    }
  });
});

describe('manifest fast path: what it answers and what it leaves', () => {
  const TTL_S = 60;
  let dir: TempDir;
  let store: MemoryCachedManifestStore;
  let metrics: Metrics;
  let server: Server;
  let base: string;
  const logs = new LogLines();
  const served: StoredManifest[] = [];
  const manifest: StoredManifest = { digest: image.manifest.digest, mediaType: image.manifest.mediaType, body: image.manifest.body };

  beforeAll(async () => {
    dir = await makeTempDir('wharf-fast-path-unit-');
    const inner = new EmbeddedManifestStore(dir.path);
    store = new MemoryCachedManifestStore(inner, { maxManifests: 100 });
    const logger = createLogger('info', logs);
    metrics = new Metrics({ processMetrics: false });
    const router = new UpstreamRouter([{ name: 'docker.io', libraryPrefix: true, offline: false }], 'docker.io');
    const manifests = new ManifestService({ store, memory: store, tagTtlSeconds: TTL_S, logger });
    const observer = new RequestObserver({ logger, metrics, topRepositories: new TopRepositories() });
    const fastPath = new ManifestFastPath({ router, manifests, observer, manifestServed: (m) => served.push(m) });
    // The full handler stands in as a real Hono app that says it was asked.
    const app = new Hono<WharfEnv>();
    app.all('*', (c) => c.text('full handler', 203));
    server = createServer(registryRequestListener(app, fastPath));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    await store.putManifest(manifest);
    // As a fetch of it for library/fast would have recorded: served by digest only under that name.
    await store.putLinks({ upstream: 'docker.io', repository: 'library/fast' }, [manifest.digest]);
    await store.putTag({ upstream: 'docker.io', repository: 'library/fast' }, 'fresh', { digest: manifest.digest, mediaType: manifest.mediaType, fetchedAt: Date.now() });
    await store.putTag({ upstream: 'docker.io', repository: 'library/fast' }, 'old', { digest: manifest.digest, mediaType: manifest.mediaType, fetchedAt: Date.now() - (TTL_S + 1) * 1000 });
    // In the store behind memory only: answering it means a store read, which is the full handler's job.
    await inner.putTag({ upstream: 'docker.io', repository: 'library/fast' }, 'on-disk', { digest: manifest.digest, mediaType: manifest.mediaType, fetchedAt: Date.now() });
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await store.close();
    await dir.cleanup();
  });

  it('answers a fresh tag from memory, counts it, logs it and marks its blobs used', async () => {
    const before = served.length;
    const res = await fetch(`${base}/v2/fast/manifests/fresh`, { headers: { 'x-request-id': 'bad id with spaces', 'user-agent': 'ci/1' } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(manifest.body)).toBe(true);
    expect(res.headers.get('docker-content-digest')).toBe(manifest.digest);
    expect(res.headers.get('x-wharf-cache')).toBe('hit');
    const reqId = res.headers.get('x-request-id');
    expect(reqId).toMatch(/^[0-9a-f-]{36}$/);
    expect(served.length).toBe(before + 1);
    const line = logs.lines.find((l) => l.reqId === reqId);
    expect(line).toMatchObject({ msg: 'request', method: 'GET', url: '/v2/fast/manifests/fresh', status: 200, cache: 'hit', upstream: 'docker.io', userAgent: 'ci/1', completed: true });
    expect(line!.bytes).toBeGreaterThan(manifest.body.length);
    const counted = (await metrics.requests.get()).values.find((v) => v.labels.kind === 'manifest' && v.labels.result === 'hit');
    expect(counted?.value).toBeGreaterThanOrEqual(1);
  });

  it('answers by digest and HEAD (no body, blobs not marked used)', async () => {
    const before = served.length;
    const head = await fetch(`${base}/v2/library/fast/manifests/${manifest.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(manifest.body.length));
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    expect(served.length).toBe(before);
  });

  it('answers a tag moved to another manifest with that manifest and its headers, not the ones it built before', async () => {
    const repo = { upstream: 'docker.io', repository: 'library/fast' };
    const other = makeImage({ name: 'fast-moved', files: { 'g.txt': 'moved\n' } }).manifest;
    await store.putManifest(other);
    await store.putLinks(repo, [other.digest]);
    await store.putTag(repo, 'moving', { digest: manifest.digest, mediaType: manifest.mediaType, fetchedAt: Date.now() });
    const first = await fetch(`${base}/v2/fast/manifests/moving`);
    expect(first.headers.get('docker-content-digest')).toBe(manifest.digest);
    await first.arrayBuffer();
    await store.putTag(repo, 'moving', { digest: other.digest, mediaType: other.mediaType, fetchedAt: Date.now() });
    const moved = await fetch(`${base}/v2/fast/manifests/moving`);
    expect(moved.headers.get('x-wharf-cache')).toBe('hit');
    expect(moved.headers.get('docker-content-digest')).toBe(other.digest);
    expect(moved.headers.get('etag')).toBe(`"${other.digest}"`);
    expect(moved.headers.get('content-length')).toBe(String(other.body.length));
    expect(Buffer.from(await moved.arrayBuffer()).equals(other.body)).toBe(true);
  });

  it('gives each request its own id, UUID-shaped, when the client sends none', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${base}/v2/fast/manifests/fresh`);
      await res.arrayBuffer();
      ids.add(res.headers.get('x-request-id')!);
    }
    expect(ids.size).toBe(5);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it.each([
    ['a tag past its freshness window', 'GET', '/v2/fast/manifests/old'],
    ['a tag only in the store behind memory', 'GET', '/v2/fast/manifests/on-disk'],
    ['a tag nobody cached', 'GET', '/v2/fast/manifests/nope'],
    ['another method', 'DELETE', '/v2/fast/manifests/fresh'],
    ['a query it does not know', 'GET', '/v2/fast/manifests/fresh?foo=1'],
    ['an escaped path', 'GET', '/v2/fast/manifests/fresh%00'],
    ['a registry that is not configured', 'GET', '/v2/fast/manifests/fresh?ns=quay.io'],
    ['an invalid repository name', 'GET', '/v2/Fast/manifests/fresh'],
    ['a malformed digest', 'GET', '/v2/fast/manifests/sha256:zz'],
    ['a blob', 'GET', `/v2/fast/blobs/${manifest.digest}`],
    ['a digest cached, but not linked to this repository', 'GET', `/v2/other/manifests/${manifest.digest}`],
    ['the operator endpoints', 'GET', '/metrics'],
  ])('leaves %s to the full handler', async (_what, method, path) => {
    const res = await fetch(`${base}${path}`, { method });
    expect(res.status).toBe(203);
    expect(await res.text()).toBe('full handler');
  });
});
