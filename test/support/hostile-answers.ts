// The misbehaving answers of the hostile-upstream suite, as raw HTTP bytes: each is a small
// function of the request and a seeded random source, so a run is reproducible from its seed.
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { httpBytes, type RawReply, type RawRequest } from './raw-http-server.ts';

export type Rand = () => number;

/** mulberry32: a small seeded PRNG, so a failing case can be replayed from its seed. */
export function seeded(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export const OCI = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER = 'application/vnd.docker.distribution.manifest.v2+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const SCHEMA1 = ['application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/vnd.docker.distribution.manifest.v1+json'];

const descriptor = (rand: Rand, mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip') => ({
  mediaType,
  digest: sha256(String(rand())),
  size: Math.floor(rand() * 1e6),
});

/** A manifest every rule accepts, of a random type. */
export function validManifest(rand: Rand): { body: Buffer; mediaType: string } {
  const kind = pick(rand, [OCI, DOCKER, OCI_INDEX]);
  const doc =
    kind === OCI_INDEX
      ? { schemaVersion: 2, mediaType: kind, manifests: [{ ...descriptor(rand, OCI), platform: { os: 'linux', architecture: 'amd64' } }] }
      : { schemaVersion: 2, mediaType: kind, config: descriptor(rand, 'application/vnd.oci.image.config.v1+json'), layers: [descriptor(rand), descriptor(rand)] };
  return { body: Buffer.from(JSON.stringify(doc)), mediaType: kind };
}

export const WEIRD_TYPES = [
  'text/html',
  'text/html; charset=utf-8',
  'application/javascript',
  'image/svg+xml',
  'text/xml',
  `${OCI}\r\nX-Injected: 1`,
  `${OCI}\u0100`,
  `${OCI}\u0000`,
  `${OCI} `,
  ' ',
  '',
  'application/vnd.oci.image.manifest.v2+json',
  'a'.repeat(300),
  'application/vnd.oci.image.manifest.v1+json; charset=\r\n',
  'APPLICATION/JSON',
  'multipart/form-data; boundary=x',
];

const mutations: ReadonlyArray<(m: Record<string, unknown>, rand: Rand) => unknown> = [
  (m) => ({ ...m, schemaVersion: 1 }),
  (m) => ({ ...m, schemaVersion: '2' }),
  (m) => ({ ...m, schemaVersion: 3 }),
  (m) => ({ ...m, layers: undefined, manifests: undefined }),
  (m) => ({ ...m, layers: 'x', manifests: 'x' }),
  (m) => ({ ...m, config: 'x' }),
  (m) => ({ ...m, config: { ...(m.config as object), digest: '../../../etc/passwd' } }),
  (m) => ({ ...m, config: { ...(m.config as object), size: -1 } }),
  (m) => ({ ...m, config: { ...(m.config as object), size: 1e300 } }),
  (m) => ({ ...m, config: { ...(m.config as object), mediaType: 'a/b\r\nc: d' } }),
  (m) => ({ ...m, layers: [null], manifests: [null] }),
  (m) => ({ ...m, layers: [{ mediaType: 'x' }], manifests: [{ mediaType: 'x' }] }),
  (m) => ({ ...m, annotations: { a: 1 } }),
  (m) => ({ ...m, artifactType: 'text/html\r\n' }),
  (m) => ({ ...m, subject: 'x' }),
  (m, rand) => ({ ...m, mediaType: pick(rand, WEIRD_TYPES) }),
  (m, rand) => ({ ...m, mediaType: pick(rand, SCHEMA1) }),
  () => [],
  () => null,
  () => 'a string',
  () => 42,
];

/** A JSON body with the look of a manifest that one rule or another must refuse. */
export function brokenManifest(rand: Rand): Buffer {
  const base = JSON.parse(validManifest(rand).body.toString()) as Record<string, unknown>;
  return Buffer.from(JSON.stringify(pick(rand, mutations)(base, rand)) ?? 'undefined');
}

export const NOT_JSON: readonly Buffer[] = [
  Buffer.from('<html><head><title>Login</title></head><body><script>alert(document.cookie)</script></body></html>'),
  Buffer.from(''),
  Buffer.from('{"schemaVersion":2,'),
  Buffer.from('\ufeff{"schemaVersion":2}'),
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI, layers: [] }), 'utf16le'),
  randomBytes(512),
  Buffer.from('null'),
  Buffer.from('\u0000\u0000\u0000'),
];

/** Ends a reply in one of the ways a broken network or server does. */
export function lengthLie(rand: Rand, status: number, headers: ReadonlyArray<readonly [string, string]>, body: Buffer, method: string): RawReply {
  const head = (extra: ReadonlyArray<readonly [string, string]>, contentLength?: number | false) =>
    httpBytes(status, [...headers, ...extra], Buffer.alloc(0), { contentLength });
  const half = body.subarray(0, Math.floor(body.length / 2));
  const options: RawReply[] = [
    { parts: [head([], body.length + 10), body] },
    { parts: [head([], Math.max(0, body.length - 5)), body] },
    { parts: [head([], false), body] },
    { parts: [head([['Transfer-Encoding', 'chunked']], false), Buffer.from(`zz\r\n`), body, Buffer.from('\r\n0\r\n\r\n')] },
    { parts: [head([['Transfer-Encoding', 'chunked']], false), Buffer.from(`${body.length.toString(16)}\r\n`), half] },
    { parts: [head([['Content-Length', String(body.length + 1)]], body.length), body] },
    { parts: [head([['Transfer-Encoding', 'chunked']], body.length), body] },
    { parts: [head([], false), Buffer.from('Content-Length: abc\r\n\r\n'), body] },
    { parts: [head([['Content-Length', '-1']], false), body] },
    { parts: [head([], body.length), half], end: 'reset' },
    { parts: [head([], 10 ** 15), half] },
  ];
  if (method === 'HEAD') return { parts: [httpBytes(status, headers, body, { method: 'HEAD' })] };
  return pick(rand, options);
}

export function statusLie(rand: Rand, body: Buffer): RawReply {
  const raw = (s: string) => ({ parts: [Buffer.from(s, 'latin1')] });
  return pick(rand, [
    { parts: [httpBytes(200, [['Content-Type', OCI]], '')] },
    { parts: [httpBytes(204, [], '', { contentLength: false })] },
    { parts: [httpBytes(206, [['Content-Type', OCI], ['Content-Range', 'bytes 0-3/99']], body.subarray(0, 4))] },
    { parts: [httpBytes(304, [], '', { contentLength: false })] },
    { parts: [httpBytes(302, [], '')] },
    { parts: [httpBytes(999, [], body)] },
    raw('HTTP/1.1 abc\r\n\r\n'),
    raw('garbage\r\n\r\n'),
    raw('HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\n{}'),
    raw('HTTP/1.1 100 Continue\r\n\r\n'),
    raw('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Bad\u0001Header: 1\r\n\r\n{}'),
    raw(`HTTP/1.1 200 OK\r\nContent-Type: ${OCI}\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`),
    { parts: [httpBytes(500, [['Content-Type', 'text/html']], '<html>oops</html>')] },
    { parts: [httpBytes(503, [['Retry-After', pick(rand, ['abc', '-1', '99999999999', '1\r\nX: y'])]], '')] },
    { parts: [httpBytes(429, [['Retry-After', pick(rand, ['abc', '0', '<script>'])]], '')] },
    { parts: [httpBytes(401, [], '<html>login</html>')] },
    { parts: [httpBytes(403, [['Content-Type', 'text/html']], '<html>no</html>')] },
    { parts: [httpBytes(404, [['Content-Type', 'text/html']], '<script>x</script>')] },
    { parts: [] },
    { parts: [], end: 'reset' },
  ]);
}

export function encodingLie(rand: Rand, body: Buffer, contentType: string): RawReply {
  return pick(rand, [
    { parts: [httpBytes(200, [['Content-Type', contentType], ['Content-Encoding', 'gzip']], gzipSync(body))] },
    { parts: [httpBytes(200, [['Content-Type', contentType], ['Content-Encoding', 'gzip']], body)] },
    { parts: [httpBytes(200, [['Content-Type', contentType], ['Content-Encoding', 'br']], randomBytes(64))] },
    { parts: [httpBytes(200, [['Content-Type', `${contentType}; charset=utf-16`]], Buffer.from(body.toString(), 'utf16le'))] },
  ]);
}

/** A slow drip: one piece every waitMs, far slower than any deadline the suite sets. */
export function drip(head: Buffer, body: Buffer, pieces: number, waitMs: number): RawReply {
  const parts: Array<Buffer | { waitMs: number }> = [head];
  const step = Math.max(1, Math.ceil(body.length / pieces));
  for (let i = 0; i < body.length; i += step) parts.push({ waitMs }, body.subarray(i, i + step));
  return { parts };
}

export type Answer = (req: RawRequest, rand: Rand) => RawReply;
