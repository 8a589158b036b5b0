// The hostile-upstream suite: 2 000 generated misbehaving answers per thread setting (bad digests,
// media types, lengths, framing, encodings, statuses, redirects, challenges, token endpoints,
// slow drips) from an upstream with configured credentials and the other host it points at.
// Afterwards: 0 poisoned cache entries (every stored blob and manifest is what its digest says,
// and the honest upstream's image is served byte for byte), 0 credentials seen by the other host,
// 0 connections to a refused address, and 0 answers that are wharf's own failures (500).
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkManifest } from '../../src/oci/manifest-check.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { httpBytes, startRawHttpServer, type RawHttpServer } from '../support/raw-http-server.ts';
import { buildCases, type HostileCase } from '../support/hostile-cases.ts';

const CASES = 2000;
const CONCURRENCY = 16;
const USER = 'suite-user';
const SECRET = 'suite-secret-7f3a';
const BASIC_B64 = Buffer.from(`${USER}:${SECRET}`).toString('base64');
const victim = makeImage({ name: 'hostile-suite-victim', files: { 'v.txt': 'honest bytes\n' }, extraLayerBytes: 64 << 10 });
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe.each([1, 2])('hostile-upstream suite (threads: %i)', (threads) => {
  let honest: UpstreamRegistry;
  let hostile: RawHttpServer;
  let other: RawHttpServer;
  let trap: Server;
  let trapConnections = 0;
  let wharf: TestWharf;
  let cases: HostileCase[];
  const logLines: string[] = [];
  const violations: string[] = [];
  const client = new Agent({ headersTimeout: 20_000, bodyTimeout: 20_000, connections: CONCURRENCY });

  beforeAll(async () => {
    honest = await startUpstreamRegistry();
    await pushImage(honest.url, 'library/victim', 'latest', victim);
    trap = createServer((s) => {
      trapConnections++;
      s.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const caseOf = (path: string) => cases[Number(/\/c(\d+)(?:\/|$)/.exec(path)?.[1] ?? -1)];
    hostile = await startRawHttpServer((req) => {
      if (req.path === '/v2/') return { parts: [httpBytes(200, [['Content-Type', 'application/json']], '{}')] };
      return caseOf(req.path)?.hostile(req) ?? { parts: [httpBytes(404, [], '')] };
    });
    other = await startRawHttpServer((req) => caseOf(req.path)?.other(req) ?? { parts: [httpBytes(404, [], '')] });
    cases = buildCases(CASES, 11 + threads, { hostile: hostile.port, other: other.port, trap: (trap.address() as AddressInfo).port }, {
      manifestDigest: victim.manifest.digest,
      layerDigest: victim.layers.at(-1)!.digest,
    });
    wharf = await startWharf({
      threads,
      logLevel: 'warn',
      logDestination: new Writable({
        write(chunk: Buffer, _enc, done) {
          logLines.push(chunk.toString());
          done();
        },
      }),
      upstreams: [
        { name: 'docker.io', url: honest.url, default: true },
        { name: 'hostile.test', url: hostile.url, username: USER, password: SECRET },
      ],
      timeouts: { connectMs: 1000, headersMs: 1500, bodyIdleMs: 1500, manifestTotalMs: 500, blobMinBytesPerSecond: 65536, blobRateWindowMs: 300 },
      cache: { tagListMaxTags: 1000, verifiedRangesOnly: true },
      // Every case must reach the upstream: a breaker opened by the earlier ones would hide the rest.
      resilience: { staleAfterMs: 5000, breaker: { failureThreshold: 1_000_000 } },
    });
  }, 120_000);

  afterAll(async () => {
    await wharf?.stop();
    await client.close();
    await Promise.all([hostile?.stop(), other?.stop(), honest?.stop()]);
    await new Promise((r) => trap?.close(r));
  });

  const check = (c: HostileCase, what: string, ok: boolean) => {
    if (!ok) violations.push(`threads ${threads}, case ${c.id} (${c.kind}, ${c.fault}, ${c.method} ${c.path} ${JSON.stringify(c.headers)}): ${what}`);
  };

  async function ask(c: HostileCase): Promise<void> {
    let res;
    try {
      res = await request(`${wharf.url}${c.path}`, { method: c.method, headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json', ...c.headers }, dispatcher: client });
    } catch (err) {
      return check(c, `no answer: ${(err as Error).message}`, false);
    }
    let body: Buffer;
    try {
      body = Buffer.from(await res.body.arrayBuffer());
    } catch {
      // A blob cut short mid-stream (its fill failed) is allowed; any other answer is whole.
      return check(c, `body cut short (status ${res.statusCode})`, c.kind.startsWith('blob') && res.statusCode < 300);
    }
    const status = res.statusCode;
    check(c, `status ${status}`, status !== 500 && [200, 206, 400, 401, 403, 404, 416, 429, 502, 503].includes(status));
    check(c, 'injected header came through', res.headers['x-injected'] === undefined);
    check(c, `not nosniff (status ${status}, ${JSON.stringify(res.headers)})`, res.headers['x-content-type-options'] === 'nosniff');
    if (status >= 400) return check(c, `error is not OCI JSON: ${res.headers['content-type']}`, res.headers['content-type'] === 'application/json');
    const type = String(res.headers['content-type']);
    if (c.kind === 'manifest-tag' || c.kind === 'manifest-digest') {
      check(c, 'manifest is not what its digest says', sha256(body) === res.headers['docker-content-digest']);
      check(c, `served a non-manifest as ${type}`, checkManifest(type, body).ok);
      if (c.kind === 'manifest-digest') check(c, 'manifest by digest has another digest', c.path.endsWith(`/${sha256(body)}`));
    }
    if (c.kind === 'blob' && status === 200) {
      check(c, `blob bytes are not its digest (${body.length} bytes, length ${res.headers['content-length']}, ${res.headers['x-wharf-cache']})`, c.path.endsWith(`/${sha256(body)}`));
    }
    if (c.kind === 'blob-range' && status === 206 && c.expected) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range']));
      check(c, 'ranged bytes are not the blob\'s', !!m && body.equals(c.expected.subarray(Number(m[1]), Number(m[2]) + 1)));
    }
    if (c.kind === 'tags' && status === 200) check(c, `tag list served as ${type}`, type.startsWith('application/json'));
  }

  it(`answers ${CASES} cases, each asked twice, without a 500, an injected header or a non-manifest served`, async () => {
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        await ask(c);
        await ask(c);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const answered = hostile.requests.filter((r) => /\/c\d+/.test(r.path)).length + other.requests.length;
    expect(answered).toBeGreaterThanOrEqual(CASES);
    expect(violations.slice(0, 20)).toEqual([]);
    expect(logLines.filter((l) => l.includes('unhandled error'))).toEqual([]);
  }, 300_000);

  it('sent no credential to the other host and dialled no refused address', () => {
    const leaked = other.requests.filter((r) => {
      const auth = r.headers.authorization ?? '';
      return auth.includes(BASIC_B64) || auth.includes('cred-token') || JSON.stringify(r).includes(SECRET);
    });
    expect(leaked).toEqual([]);
    expect(trapConnections).toBe(0);
    // The suite did exercise both: the upstream did get its credentials, and the other host was asked.
    expect(hostile.requests.some((r) => r.headers.authorization?.includes(BASIC_B64) || r.headers.authorization?.includes('cred-token'))).toBe(true);
    expect(other.requests.filter((r) => r.path.startsWith('/token/')).length).toBeGreaterThan(0);
  });

  it('holds no poisoned entry: every blob and manifest on disk is what its digest says, and the honest image is intact', async () => {
    const blobsDir = join(wharf.dataDir, 'blobs', 'sha256');
    for (const prefix of await readdir(blobsDir).catch(() => [])) {
      for (const hex of await readdir(join(blobsDir, prefix))) {
        expect(sha256(await readFile(join(blobsDir, prefix, hex)))).toBe(`sha256:${hex}`);
      }
    }
    const manifestsDir = join(wharf.dataDir, 'manifests', 'manifests', 'sha256');
    let stored = 0;
    for (const prefix of await readdir(manifestsDir).catch(() => [])) {
      for (const hex of await readdir(join(manifestsDir, prefix))) {
        const value = await readFile(join(manifestsDir, prefix, hex));
        const eol = value.indexOf(0x0a);
        const body = value.subarray(eol + 1);
        expect(sha256(body)).toBe(`sha256:${hex}`);
        expect(checkManifest(value.toString('latin1', 0, eol), body)).toMatchObject({ ok: true });
        stored++;
      }
    }
    expect(stored).toBeGreaterThan(0); // the valid answers among the cases were cached
    const byTag = await request(`${wharf.url}/v2/victim/manifests/latest`, { headers: { accept: victim.manifest.mediaType }, dispatcher: client });
    expect(Buffer.from(await byTag.body.arrayBuffer()).equals(victim.manifest.body)).toBe(true);
    const byDigest = await request(`${wharf.url}/v2/victim/manifests/${victim.manifest.digest}`, { headers: { accept: victim.manifest.mediaType }, dispatcher: client });
    expect(Buffer.from(await byDigest.body.arrayBuffer()).equals(victim.manifest.body)).toBe(true);
    for (const layer of victim.layers) {
      const blob = await request(`${wharf.url}/v2/victim/blobs/${layer.digest}`, { dispatcher: client });
      expect(sha256(Buffer.from(await blob.body.arrayBuffer()))).toBe(layer.digest);
    }
  });
});
