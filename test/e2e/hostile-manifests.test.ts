// Upstreams that lie about manifests: a claimed digest for another upstream's content, media
// types that break headers, things that are not manifests at all. Nothing of it may be cached,
// every answer is OCI JSON (502, never 500), and nothing wharf serves can be sniffed as HTML.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { manifestAnswer, startHostileUpstream, type HostileUpstream } from '../support/hostile-upstream.ts';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const ACCEPT = `${OCI}, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws`;
const victim = makeImage({ name: 'victim-b6', files: { 'secret.txt': 'the victim image\n' } });

const validBody = (mediaType: string) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 2 },
    layers: [],
  });

describe.each([1, 2])('hostile manifests (threads: %i)', (threads) => {
  let honest: UpstreamRegistry;
  let evil: HostileUpstream;
  let wharf: TestWharf;

  const get = async (path: string, method: 'GET' | 'HEAD' = 'GET') => {
    const res = await request(`${wharf.url}${path}`, { method, headers: { accept: ACCEPT } });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  };
  const asked = (path: string) => evil.requests.filter((r) => r.method === 'GET' && r.path === path).length;

  beforeAll(async () => {
    honest = await startUpstreamRegistry();
    await pushImage(honest.url, 'big/b6', 'latest', victim);
    evil = await startHostileUpstream();
    wharf = await startWharf({
      threads,
      upstreams: [
        { name: 'docker.io', url: honest.url, default: true },
        { name: 'evil.io', url: evil.url },
      ],
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await evil?.stop();
    await honest?.stop();
  });

  it('stores nothing under a digest it did not compute: a schema1 answer claiming another upstream\'s digest poisons nothing', async () => {
    const attack = JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'latest', fsLayers: [], history: [], signatures: [] });
    evil.handle((req) =>
      req.path.startsWith('/v2/x/manifests/')
        ? manifestAnswer(attack, 'application/vnd.docker.distribution.manifest.v1+prettyjws', { 'docker-content-digest': victim.manifest.digest })
        : undefined,
    );
    const poisoned = await get('/v2/evil.io/x/manifests/latest');
    expect(poisoned.status).toBe(502);
    expect(JSON.parse(poisoned.body.toString()).errors[0].message).toMatch(/schema1/);
    // The same lie with a current media type: the bytes do not hash to the claimed digest.
    evil.handle((req) =>
      req.path.startsWith('/v2/y/manifests/') ? manifestAnswer(validBody(OCI), OCI, { 'docker-content-digest': victim.manifest.digest }) : undefined,
    );
    expect((await get('/v2/evil.io/y/manifests/latest')).status).toBe(502);
    expect((await get(`/v2/evil.io/y/manifests/${victim.manifest.digest}`)).status).toBe(502);

    for (let i = 0; i < 6; i++) {
      const byTag = await get('/v2/big/b6/manifests/latest');
      expect(byTag.status).toBe(200);
      expect(byTag.body.equals(victim.manifest.body)).toBe(true);
      const byDigest = await get(`/v2/big/b6/manifests/${victim.manifest.digest}`);
      expect(byDigest.status).toBe(200);
      expect(byDigest.body.equals(victim.manifest.body)).toBe(true);
    }
  });

  it.each([
    ['CR/LF', `${OCI}\r\nSet-Cookie: a=b`],
    ['a character above U+00FF', `${OCI}\u0100`],
    ['a NUL', `${OCI}\u0000`],
  ])('answers a manifest whose mediaType holds %s with a 502 in OCI JSON, every time, and caches nothing', async (_what, mediaType) => {
    const path = `/v2/mt${threads}-${mediaType.length}-${mediaType.charCodeAt(mediaType.length - 1)}/manifests/latest`;
    evil.handle((req) => (req.path === path ? manifestAnswer(validBody(mediaType), 'application/json') : undefined));
    for (let i = 1; i <= 3; i++) {
      const res = await get(path.replace('/v2/', '/v2/evil.io/'));
      expect(res.status).toBe(502);
      expect(res.headers['content-type']).toBe('application/json');
      expect(JSON.parse(res.body.toString()).errors[0].code).toBe('UNKNOWN');
      expect(asked(path)).toBe(i);
    }
    expect((await get(path.replace('/v2/', '/v2/evil.io/'), 'HEAD')).status).toBe(502);
  });

  it.each([
    ['a captive portal page', 'text/html; charset=utf-8', '<html><body><script>document.cookie</script></body></html>'],
    ['a JSON array', 'application/json', '[]'],
    ['a body whose mediaType is text/html', 'application/json', validBody('text/html')],
    ['HTML labelled as a manifest', OCI, '<html><script>alert(1)</script></html>'],
    ['an object that is not a manifest', OCI, '{"schemaVersion":2,"hello":"world"}'],
  ])('refuses %s and caches nothing', async (what, contentType, body) => {
    const path = `/v2/nm${threads}-${what.toLowerCase().replace(/[^a-z0-9]+/g, '-')}/manifests/latest`;
    evil.handle((req) => (req.path === path ? manifestAnswer(body, contentType) : undefined));
    for (let i = 1; i <= 2; i++) {
      const res = await get(path.replace('/v2/', '/v2/evil.io/'));
      expect(res.status).toBe(502);
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body.toString()).not.toContain('<');
      expect(asked(path)).toBe(i);
    }
  });

  it('passes on referrers only as an OCI index, never the upstream\'s HTML', async () => {
    const digest = victim.manifest.digest;
    evil.handle((req) =>
      req.path.startsWith('/v2/ref/referrers/') ? { status: 200, body: '<html><script>alert(1)</script></html>', headers: { 'content-type': 'text/html' } } : undefined,
    );
    const html = await get(`/v2/evil.io/ref/referrers/${digest}`);
    expect(html.status).toBe(502);
    expect(html.headers['content-type']).toBe('application/json');
    const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] });
    evil.handle((req) => (req.path.startsWith('/v2/ref/referrers/') ? { status: 200, body: index, headers: { 'content-type': 'application/json' } } : undefined));
    const ok = await get(`/v2/evil.io/ref/referrers/${digest}`);
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toBe('application/vnd.oci.image.index.v1+json');
  });

  it('marks every answer nosniff: manifests, blobs, errors, /v2/, the status page, metrics', async () => {
    const layer = victim.layers[0]!;
    for (const path of ['/v2/', '/v2/big/b6/manifests/latest', `/v2/big/b6/blobs/${layer.digest}`, '/v2/nope/manifests/latest', '/', '/metrics', '/healthz']) {
      for (let i = 0; i < 4; i++) {
        const res = await get(path);
        expect(res.headers['x-content-type-options'], path).toBe('nosniff');
      }
    }
  });
});

describe('a manifest dripped slowly', () => {
  let evil: HostileUpstream;
  let wharf: TestWharf;

  beforeAll(async () => {
    const body = validBody(OCI);
    // 10 bytes a second: never idle for long (bodyIdleMs is 30 s), but 30 s for the whole body.
    evil = await startHostileUpstream((req) => (req.path.startsWith('/v2/drip/') ? { ...manifestAnswer(body, OCI), dripMs: 1000, dripBytes: Math.ceil(body.length / 30) } : undefined));
    wharf = await startWharf({ upstreams: [{ name: 'registry.test', url: evil.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await evil?.stop();
  });

  it('is cut at the whole-response deadline (timeouts.manifestTotalMs, 10 s by default), not held for the drip', async () => {
    const started = performance.now();
    const res = await request(`${wharf.url}/v2/drip/manifests/latest`, { headers: { accept: OCI } });
    const text = await res.body.text();
    const seconds = (performance.now() - started) / 1000;
    expect(res.statusCode).toBe(503);
    expect(JSON.parse(text).errors[0].code).toBe('UNAVAILABLE');
    expect(seconds).toBeGreaterThan(9);
    expect(seconds).toBeLessThan(13);
  }, 60_000);
});
