// The cases of the hostile-upstream suite: each names what the client asks wharf for and how the
// hostile upstream (H) and the other host it points at (O: a CDN or a token realm, reached as
// "localhost", which is not H's host) answer. Case i owns every path holding "c<i>".
import { randomBytes } from 'node:crypto';
import { httpBytes, type RawReply, type RawRequest } from './raw-http-server.ts';
import {
  brokenManifest,
  drip,
  encodingLie,
  lengthLie,
  NOT_JSON,
  pick,
  SCHEMA1,
  seeded,
  sha256,
  statusLie,
  validManifest,
  WEIRD_TYPES,
  type Rand,
} from './hostile-answers.ts';

export type CaseKind = 'manifest-tag' | 'manifest-digest' | 'manifest-head' | 'blob' | 'blob-range' | 'tags';

export interface SuitePorts {
  readonly hostile: number;
  readonly other: number;
  readonly trap: number;
}

export interface Victim {
  readonly manifestDigest: string;
  readonly layerDigest: string;
}

export interface HostileCase {
  readonly id: number;
  readonly kind: CaseKind;
  readonly fault: string;
  /** The path to ask wharf, under the hostile upstream's name. */
  readonly path: string;
  readonly method: 'GET' | 'HEAD';
  readonly headers: Record<string, string>;
  /** For blobs: the bytes the digest names, when the suite knows them. */
  readonly expected?: Buffer;
  readonly hostile: (req: RawRequest) => RawReply;
  readonly other: (req: RawRequest) => RawReply;
}

const ok = (body: Buffer | string, headers: ReadonlyArray<readonly [string, string]> = [], method = 'GET'): RawReply => ({ parts: [httpBytes(200, headers, body, { method })] });
const notFound: RawReply = { parts: [httpBytes(404, [], '')] };

export function buildCases(count: number, seed: number, ports: SuitePorts, victim: Victim): HostileCase[] {
  const cases: HostileCase[] = [];
  for (let id = 0; id < count; id++) cases.push(buildCase(id, seeded(seed * 100_003 + id), ports, victim));
  return cases;
}

function buildCase(id: number, rand: Rand, ports: SuitePorts, victim: Victim): HostileCase {
  const kind = pick(rand, ['manifest-tag', 'manifest-tag', 'manifest-digest', 'manifest-head', 'blob', 'blob', 'blob-range', 'tags'] as const);
  const repo = `c${id}`;
  const o = `http://localhost:${ports.other}`;
  const content = kind.startsWith('blob') ? randomBytes(1 + Math.floor(rand() * 64 * 1024)) : validManifest(rand).body;
  const poison = rand() < 0.4;
  const digest = kind === 'blob' || kind === 'blob-range' ? (poison ? victim.layerDigest : sha256(content)) : poison ? victim.manifestDigest : sha256(content);
  const wrong = kind.startsWith('blob') ? randomBytes(content.length) : validManifest(rand).body;
  const payload = kind === 'tags' ? tagPayload(rand) : manifestPayload(rand, content, wrong, digest);
  const [fault, answer] = pick(rand, faultsFor(kind, payload, o, ports, repo, rand));
  const path =
    kind === 'tags'
      ? `/v2/hostile.test/${repo}/tags/list`
      : kind.startsWith('blob')
        ? `/v2/hostile.test/${repo}/blobs/${digest}`
        : `/v2/hostile.test/${repo}/manifests/${kind === 'manifest-digest' ? digest : 'latest'}`;
  const headers: Record<string, string> = {};
  if (kind === 'blob-range') headers.range = pick(rand, ['bytes=0-99', 'bytes=10-', 'bytes=-50', 'bytes=0-0']);
  return {
    id,
    kind,
    fault,
    path,
    method: kind === 'manifest-head' ? 'HEAD' : 'GET',
    headers,
    expected: kind.startsWith('blob') && !poison ? content : undefined,
    hostile: answer.hostile,
    other: answer.other ?? (() => notFound),
  };
}

interface Payload {
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
}

function manifestPayload(rand: Rand, content: Buffer, wrong: Buffer, digest: string): Payload {
  const mediaType = pick(rand, ['application/json', ...WEIRD_TYPES.slice(0, 4), ...SCHEMA1, 'application/vnd.oci.image.manifest.v1+json']);
  const body = pick(rand, [content, wrong, brokenManifest(rand), pick(rand, NOT_JSON)]);
  const claim = pick(rand, [digest, sha256(body), sha256('other'), 'sha256:zz', `${digest}\r\nX-Injected: 1`]);
  return { status: 200, headers: [['Content-Type', mediaType], ['Docker-Content-Digest', claim]], body };
}

function tagPayload(rand: Rand): Payload {
  const body = pick(rand, [
    JSON.stringify({ name: 'x', tags: Array.from({ length: 1 + Math.floor(rand() * 50) }, (_, i) => `t${i}`) }),
    JSON.stringify({ name: 'x', tags: [1, 2, null] }),
    JSON.stringify({ name: 'x', tags: 'latest' }),
    JSON.stringify({ name: 'x', tags: Array.from({ length: 3000 }, (_, i) => `t${i}`) }),
    JSON.stringify({ name: 'x', tags: ['<script>alert(1)</script>', 'a\r\nb', '\u0000'] }),
    '<html></html>',
    '[]',
    '{"tags":[',
  ]);
  return { status: 200, headers: [['Content-Type', pick(rand, ['application/json', 'text/html'])]], body: Buffer.from(body) };
}

type Fault = readonly [string, { hostile: (req: RawRequest) => RawReply; other?: (req: RawRequest) => RawReply }];

function faultsFor(kind: CaseKind, p: Payload, o: string, ports: SuitePorts, repo: string, rand: Rand): Fault[] {
  const plain = (req: RawRequest): RawReply => ({ parts: [httpBytes(p.status, p.headers, p.body, { method: req.method })] });
  const tokenRealm = (host: string) => `${host}/token/${repo}`;
  const challenge = (realm: string) => ({ parts: [httpBytes(401, [['WWW-Authenticate', `Bearer realm="${realm}",service="s",scope="repository:${repo}:pull"`]], '')] });
  const authorised = (req: RawRequest) => req.headers.authorization?.startsWith('Bearer ') ?? false;
  const tokenAnswer = (req: RawRequest): RawReply =>
    pick(rand, [
      ok(JSON.stringify({ token: `${req.headers.authorization?.startsWith('Basic ') ? 'cred' : 'anon'}-token-${repo}`, expires_in: 60 })),
      ok('not json'),
      ok(JSON.stringify({ token: 'a\r\nX-Injected: 1' })),
      ok(JSON.stringify({ token: 'x'.repeat(70_000) })),
      ok(JSON.stringify({ token: 'tok\u0100' })),
      ok(JSON.stringify({})),
      { parts: [httpBytes(500, [], '')] },
      { parts: [], end: 'reset' },
    ]);
  const isToken = (req: RawRequest) => req.path.startsWith(`/token/${repo}`);
  const faults: Fault[] = [
    ['as sent', { hostile: plain }],
    ['lying length or framing', { hostile: (req) => lengthLie(rand, p.status, p.headers, p.body, req.method) }],
    ['lying status or headers', { hostile: () => statusLie(rand, p.body) }],
    ['lying encoding', { hostile: () => encodingLie(rand, p.body, 'application/json') }],
    ['slow drip', { hostile: (req) => (req.method === 'HEAD' ? plain(req) : drip(httpBytes(p.status, p.headers, '', { contentLength: p.body.length }), p.body, 20, 60)) }],
    ['redirect to another host', { hostile: () => redirect(`${o}/o/${repo}/x`), other: plain }],
    ['redirect loop', { hostile: (req) => redirect(req.path) }],
    ['redirect ping-pong across hosts', { hostile: () => redirect(`${o}/o/${repo}/pong`), other: () => redirect(`http://127.0.0.1:${ports.hostile}/v2/${repo}/ping`) }],
    ['redirect to a refused target', { hostile: () => redirect(pick(rand, [`http://0.0.0.0:${ports.trap}/x`, `http://[::]:${ports.trap}/x`, `http://[::ffff:0.0.0.0]:${ports.trap}/x`, 'ftp://127.0.0.1/x', 'file:///etc/passwd', 'javascript:alert(1)', `http://u:p@localhost:${ports.other}/o/${repo}`, 'http://[bad', '']))}],
    ['challenge naming another host\'s realm', { hostile: (req) => (authorised(req) ? plain(req) : challenge(tokenRealm(o))), other: (req) => (isToken(req) ? tokenAnswer(req) : notFound) }],
    ['challenge naming its own realm', { hostile: (req) => (isToken(req) ? tokenAnswer(req) : authorised(req) ? plain(req) : challenge(tokenRealm(`http://127.0.0.1:${ports.hostile}`))) }],
    ['redirect to a host that challenges', { hostile: (req) => (isToken(req) ? tokenAnswer(req) : redirect(`${o}/o/${repo}/x`)), other: (req) => (isToken(req) ? tokenAnswer(req) : authorised(req) ? plain(req) : challenge(tokenRealm(pick(rand, [o, `http://127.0.0.1:${ports.hostile}`])))) }],
    ['redirect to a host that asks for Basic', { hostile: () => redirect(`${o}/o/${repo}/x`), other: () => ({ parts: [httpBytes(401, [['WWW-Authenticate', 'Basic realm="cdn"']], '')] }) }],
    ['malformed challenge', { hostile: () => ({ parts: [httpBytes(401, [['WWW-Authenticate', pick(rand, ['Bearer realm="unterminated', 'Bearer', 'Negotiate abc', 'Bearer realm="ftp://x/token"', `Bearer realm="http://0.0.0.0:${ports.trap}/token"`, 'Bearer realm="javascript:alert(1)"', `Bearer realm="${'x'.repeat(9000)}"`, 'Basic realm="a", Bearer realm=""'])]], '')] }) }],
  ];
  if (kind === 'blob' || kind === 'blob-range') faults.push(['partial answer to a whole request', { hostile: () => ({ parts: [httpBytes(206, [['Content-Range', `bytes 0-9/${p.body.length}`]], p.body.subarray(0, 10))] }) }]);
  return faults;
}

function redirect(location: string): RawReply {
  return { parts: [httpBytes(307, [['Location', location]], '')] };
}
