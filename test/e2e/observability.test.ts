// What operators see: /metrics after real pulls, one JSON access line per request with a
// request id, health and readiness, and credentials that never reach the log.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { startRedisServer } from '../support/redis-server.ts';
import { makeTempDir } from '../support/temp-dir.ts';
import { metricValue } from '../support/metrics.ts';
import { Skopeo } from '../support/skopeo.ts';
import { LogLines } from '../support/log-lines.ts';

const image = makeImage({ name: 'obs', files: { 'o.txt': 'observed\n' }, extraLayerBytes: 300 << 10 });
const blobs = [image.config, ...image.layers];
const PASSWORD = 'sup3r-s3cret-upstream-pw';

describe('observability', () => {
  let upstream: UpstreamRegistry;
  let proxy: FaultProxy;
  let wharf: TestWharf;
  let skopeo: Skopeo;
  const logs = new LogLines();

  beforeAll(async () => {
    upstream = await startUpstreamRegistry({ auth: 'token' });
    await pushImage(upstream.url, 'library/obs', 'v1', image);
    proxy = await startFaultProxy(upstream.url);
    proxy.addHeaders = { 'RateLimit-Remaining': '76;w=21600' };
    wharf = await startWharf({
      upstreams: [{ name: 'docker.io', url: proxy.url, default: true, username: 'ci-bot', password: PASSWORD }],
      logLevel: 'trace',
      logDestination: logs,
    });
    skopeo = await Skopeo.create();
    await skopeo.copy(`docker://${wharf.host}/library/obs:v1`);
    await skopeo.copy(`docker://${wharf.host}/library/obs:v1`);
    await wharf.deps.blobs.settled();
  });

  afterAll(async () => {
    await wharf?.stop();
    await proxy?.stop();
    await upstream?.stop();
    await skopeo?.cleanup();
  });

  it('exports request, traffic, upstream, cache and store metrics', async () => {
    const m = (name: string, labels: Record<string, string> = {}) => metricValue(wharf.url, name, labels);
    expect(await m('wharf_requests_total', { kind: 'blob', result: 'miss', upstream: 'docker.io' })).toBe(blobs.length);
    expect(await m('wharf_requests_total', { kind: 'blob', result: 'hit' })).toBe(blobs.length);
    expect(await m('wharf_requests_total', { kind: 'manifest', upstream: 'docker.io' })).toBeGreaterThanOrEqual(2);
    const blobBytes = blobs.reduce((s, b) => s + b.body.length, 0);
    // Hits go out through sendfile (npm ci builds the addon), past Node's byte count; they count all the same.
    expect(wharf.deps.files.method).toBe('sendfile');
    expect(await m('wharf_served_bytes_total', { kind: 'blob', result: 'hit' })).toBeGreaterThan(blobBytes);
    expect(await m('wharf_upstream_bytes_total', { upstream: 'docker.io' })).toBe(blobBytes + image.manifest.body.length);
    expect(await m('wharf_upstream_requests_total', { upstream: 'docker.io', status_class: '2xx' })).toBeGreaterThanOrEqual(blobs.length + 1);
    expect(await m('wharf_upstream_request_duration_seconds_count', { upstream: 'docker.io' })).toBeGreaterThan(0);
    expect(await m('wharf_upstream_ratelimit_remaining', { upstream: 'docker.io' })).toBe(76);
    expect(await m('wharf_cache_blobs')).toBe(blobs.length);
    expect(await m('wharf_cache_blob_bytes')).toBe(blobBytes);
    expect(await m('wharf_blob_fills_in_flight')).toBe(0);
    expect(await m('wharf_upstream_breaker_state', { upstream: 'docker.io' })).toBe(0);
    expect(await m('wharf_manifest_store_operations_total', { backend: 'embedded', operation: 'putManifest' })).toBeGreaterThan(0);
    expect(await m('process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('never puts a repository, tag or digest in a metric label', async () => {
    const text = await (await fetch(`${wharf.url}/metrics`)).text();
    const labelSets = text
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => /\{(.*)\}/.exec(l)?.[1] ?? '');
    expect(labelSets.some((l) => l.includes('upstream="docker.io"'))).toBe(true);
    for (const labels of labelSets) expect(labels).not.toMatch(/sha256|library|"obs|"v1"/);
  });

  it('writes one JSON access line per request, with a request id echoed to the client', async () => {
    const res = await fetch(`${wharf.url}/v2/library/obs/manifests/v1`, { headers: { 'x-request-id': 'ci-job-42' } });
    expect(res.headers.get('x-request-id')).toBe('ci-job-42');
    await res.arrayBuffer();
    const generated = await fetch(`${wharf.url}/v2/library/obs/blobs/${image.config.digest}`);
    await generated.arrayBuffer();
    const id = generated.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 50));
    const access = logs.lines.filter((l) => l.msg === 'request');
    expect(access.find((l) => l.reqId === 'ci-job-42')).toMatchObject({ method: 'GET', status: 200, cache: 'hit', url: '/v2/library/obs/manifests/v1', completed: true });
    const blobLine = access.find((l) => l.reqId === id);
    expect(blobLine).toMatchObject({ status: 200, cache: 'hit', upstream: 'docker.io' });
    expect(blobLine!.bytes as number).toBeGreaterThan(image.config.body.length);
    // Every request of the two pulls has exactly one line.
    expect(new Set(access.map((l) => l.reqId)).size).toBe(access.length);
  });

  it('never logs the upstream credentials, even at trace level', () => {
    expect(logs.raw.length).toBeGreaterThan(10);
    for (const line of logs.raw) {
      expect(line).not.toContain(PASSWORD);
      expect(line).not.toContain(Buffer.from(`ci-bot:${PASSWORD}`).toString('base64'));
    }
  });

  it('answers /healthz and /readyz, naming each store and upstream', async () => {
    expect(await (await fetch(`${wharf.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${wharf.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      stores: { blobStore: { ok: true }, manifestStore: { ok: true, backend: 'embedded' } },
      upstreams: [{ name: 'docker.io', reachability: 'reachable', breaker: 'closed' }],
    });
  });
});

describe('readiness when stores fail', () => {
  it('stays ready but degraded without Redis, and says which upstream is unreachable', async () => {
    const redis = await startRedisServer();
    const wharf = await startWharf({ redisUrl: redis.url, upstreams: [{ name: 'docker.io', url: 'http://127.0.0.1:9', default: true }] });
    try {
      await fetch(`${wharf.url}/v2/library/x/manifests/latest`).then((r) => r.arrayBuffer());
      await redis.stop();
      const res = await fetch(`${wharf.url}/readyz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        status: 'degraded',
        stores: { manifestStore: { ok: false, backend: 'redis' } },
        upstreams: [{ name: 'docker.io', reachability: 'unreachable' }],
      });
    } finally {
      await wharf.stop();
      await redis.stop();
    }
  });

  it('is not ready when the blob store cannot be read', async () => {
    const dir = await makeTempDir('wharf-notready-');
    // dataDir below a regular file: it can never be created or read.
    await writeFile(join(dir.path, 'file'), 'x');
    const wharf = await startWharf({ dataDir: join(dir.path, 'file', 'data'), upstreams: [{ name: 'docker.io', url: 'http://127.0.0.1:9', default: true }] });
    try {
      const res = await fetch(`${wharf.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'not ready', stores: { blobStore: { ok: false } } });
    } finally {
      await wharf.stop();
      await dir.cleanup();
    }
  });
});
