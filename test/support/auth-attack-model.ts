// The shape of the negative suite's cases (auth-attack-cases.ts builds them): each case is one
// or more raw requests, each with the exact set of statuses an answer may have. The world is
// what the attacker could know or hold: the repositories' names and digests, alice's own token,
// wharf's public key, keys of its own; and what only the suite holds to forge with (wharf's
// signing key, read from its file, to sign tokens that are wrong in one claim).
import type { KeyObject } from 'node:crypto';
import { decodeJwt } from 'jose';
import { rawRequest, type RawAnswer, type RawRequest } from './raw-http-client.ts';
import type { TestImage } from './test-images.ts';
import { MACHINE_TOKEN, PASSWORDS } from './auth-negative-wharf.ts';

export type Kind = 'names' | 'digests' | 'scopes' | 'tokens' | 'headers' | 'ranges' | 'traversal';
export const KINDS: readonly Kind[] = ['names', 'digests', 'scopes', 'tokens', 'headers', 'ranges', 'traversal'];

/** A status, or 'closed': the server ended the connection without an answer (CONNECT). */
export type Outcome = number | 'closed';

/** Who the server should take the caller for: none and bad get 401, alice and ci 403 for b. */
export type Caller = 'none' | 'bad' | 'alice' | 'ci';

export interface World {
  /** Host header: wharf's address as clients write it. */
  readonly host: string;
  readonly upstreamHost: string;
  readonly a: TestImage;
  readonly b: TestImage;
  /** alice's wharf token for repository:ghcr.io/acme/a:pull, fetched before the attack. */
  readonly aliceToken: string;
  /** bob's token for b: only its pieces are ever sent (spliced into forgeries), never the whole. */
  readonly bobToken: string;
  readonly keys: {
    readonly real: KeyObject;
    readonly realPublicPem: string;
    readonly kid: string;
    readonly other: KeyObject;
    readonly otherKid: string;
    readonly otherEc: KeyObject;
  };
  /** Seconds since the epoch when the cases were built. */
  readonly now: number;
}

export interface Step {
  readonly request: RawRequest;
  /** What was sent, short enough for a failure message. */
  readonly summary: string;
  readonly allowed: readonly Outcome[];
  /** The caller may be served a's content: a 2xx must be exactly that. */
  readonly servesA?: boolean;
  /** A 2xx that is neither a's content nor checked here is a violation. */
  readonly check?: (answer: RawAnswer) => string | undefined;
  /** Secrets the request carries elsewhere than in an Authorization header (a form body). */
  readonly secrets?: readonly string[];
  /** Pipelined: the requests written before this one on the same connection, answered first. */
  readonly earlier?: readonly Step[];
}

export interface AttackCase {
  readonly id: number;
  readonly kind: Kind;
  readonly variant: string;
  /** The step after these answers (a later one may use a token an earlier one got); undefined: done. */
  next(answers: readonly RawAnswer[]): Step | undefined;
}

export type Rand = () => number;
export const chance = (rand: Rand, p: number) => rand() < p;
export const int = (rand: Rand, max: number) => Math.floor(rand() * max);

/**
 * A referrers answer for a digest the repository has no referrers for: an empty OCI index (or a
 * HEAD's empty body). Anything listed would be a descriptor of someone's content.
 */
export function emptyReferrers(answer: RawAnswer): string | undefined {
  if (answer.body.length === 0) return undefined;
  try {
    const index = JSON.parse(answer.body.toString('utf8')) as { manifests?: unknown };
    return Array.isArray(index.manifests) && index.manifests.length === 0 ? undefined : `referrers list is not empty: ${answer.body.toString('latin1').slice(0, 160)}`;
  } catch {
    return `a referrers answer that is not JSON: ${answer.body.toString('latin1').slice(0, 80)}`;
  }
}

export function single(step: Step): AttackCase['next'] {
  return (answers) => (answers.length === 0 ? step : undefined);
}

export const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json';
export const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export interface Credential {
  readonly who: Caller;
  readonly label: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** A wharf token (not a credential at /token). */
  readonly token?: boolean;
}

export function credential(w: World, which: 'none' | 'alice-token' | 'alice-basic' | 'ci'): Credential {
  if (which === 'none') return { who: 'none', label: 'no credentials', headers: [] };
  if (which === 'alice-token') return { who: 'alice', label: "alice's token", headers: [['Authorization', `Bearer ${w.aliceToken}`]], token: true };
  if (which === 'alice-basic') return { who: 'alice', label: 'alice Basic', headers: [['Authorization', basic('alice', PASSWORDS.alice)]] };
  return { who: 'ci', label: 'ci machine token', headers: [['Authorization', `Bearer ${MACHINE_TOKEN}`]] };
}

/** The usual attacker: alice's token or nothing, now and then Basic or the machine. */
export function someCaller(w: World, rand: Rand): Credential {
  const r = rand();
  return credential(w, r < 0.45 ? 'alice-token' : r < 0.8 ? 'none' : r < 0.9 ? 'alice-basic' : 'ci');
}

export const refusal = (who: Caller): number => (who === 'alice' || who === 'ci' ? 403 : 401);

/** /token's answer to a caller: 401 for bad credentials and for a wharf token (not a credential there). */
export const tokenAnswer = (cred: Pick<Credential, 'who' | 'token'>): number => (cred.who === 'bad' || cred.token ? 401 : 200);

/** Whether the Authorization that counts (Node keeps the first) is this wharf token. */
export function bearsToken(lines: ReadonlyArray<readonly [string, string]>, token: string): boolean {
  const value = lines.find(([name]) => name.toLowerCase() === 'authorization')?.[1].trim();
  return value !== undefined && /^bearer\s+/i.test(value) && value.replace(/^bearer\s+/i, '').trim() === token;
}

export interface Op {
  readonly path: string;
  readonly what: 'tag' | 'manifest' | 'blob' | 'tags' | 'referrers';
}

/** b's endpoints: the tag, its manifest by digest, its blobs, its tag list and referrers. */
export function bOps(w: World): Op[] {
  const b = w.b;
  return [
    { path: 'manifests/v1', what: 'tag' },
    { path: `manifests/${b.manifest.digest}`, what: 'manifest' },
    { path: `blobs/${b.layers[1]!.digest}`, what: 'blob' },
    { path: `blobs/${b.layers[0]!.digest}`, what: 'blob' },
    { path: `blobs/${b.config.digest}`, what: 'blob' },
    { path: 'tags/list', what: 'tags' },
    { path: `referrers/${b.manifest.digest}`, what: 'referrers' },
  ];
}

/** a's own content (alice and ci may have it): 200 for them. */
export function aOps(w: World): Op[] {
  const a = w.a;
  return [
    { path: 'manifests/v1', what: 'tag' },
    { path: `manifests/${a.manifest.digest}`, what: 'manifest' },
    { path: `blobs/${a.layers[1]!.digest}`, what: 'blob' },
    { path: `blobs/${a.config.digest}`, what: 'blob' },
  ];
}

/** A GET or HEAD (1 in 4) with the caller's headers. */
export function ask(
  w: World,
  rand: Rand,
  target: string,
  cred: Credential,
  o: { method?: string; extra?: ReadonlyArray<readonly [string, string]>; body?: Buffer; chunked?: boolean; version?: string; host?: string | null } = {},
): { request: RawRequest; summary: string } {
  const method = o.method ?? (chance(rand, 0.25) ? 'HEAD' : 'GET');
  const headers = [...cred.headers, ['Accept', ACCEPT] as const, ...(o.extra ?? [])];
  const request = rawRequest({ method, target, headers, body: o.body, chunked: o.chunked, version: o.version, host: o.host === undefined ? w.host : o.host });
  const extra = (o.extra ?? []).map(([k, v]) => `${k}: ${short(v, 60)}`).join('; ');
  return { request, summary: `${short(method, 20)} ${short(target, 200)} [${cred.label}${extra ? `; ${extra}` : ''}]` };
}

export function short(text: string, max: number): string {
  const s = JSON.stringify(text).slice(1, -1);
  return s.length > max ? `${s.slice(0, max)}...(${text.length})` : s;
}

interface TokenClaims {
  sub?: string;
  access?: Array<{ type: string; name: string; actions: string[] }>;
  wharf?: { kind?: string };
}

/** The token in a /token answer and its claims, or why the answer is not one. */
export function issuedToken(answer: RawAnswer): { token: string; claims: TokenClaims } | string {
  let body: { token?: unknown; access_token?: unknown };
  try {
    body = JSON.parse(answer.body.toString('utf8')) as typeof body;
  } catch {
    return `token answer is not JSON: ${short(answer.body.toString('latin1'), 100)}`;
  }
  if (typeof body.token !== 'string' || body.token !== body.access_token) return 'token answer without token = access_token';
  try {
    return { token: body.token, claims: decodeJwt(body.token) as TokenClaims };
  } catch {
    return 'issued token does not decode';
  }
}

/**
 * For a /token answer to `who`: a 200 must be a token for exactly that caller granting nothing
 * beyond pull of ghcr.io/acme/a (alice and ci), or nothing at all (anonymous).
 */
export function grantCheck(who: Caller): (answer: RawAnswer) => string | undefined {
  return (answer) => {
    if (answer.status !== 200) return undefined;
    const issued = issuedToken(answer);
    if (typeof issued === 'string') return issued;
    const { claims } = issued;
    const expected = who === 'alice' ? ['user', 'alice'] : who === 'ci' ? ['machine', 'ci'] : ['anonymous', ''];
    if (claims.wharf?.kind !== expected[0] || claims.sub !== expected[1]) return `token issued to ${claims.wharf?.kind}:${claims.sub}, expected ${expected.join(':')}`;
    const access = claims.access ?? [];
    const granted = access.filter((e) => !(who !== 'none' && e.type === 'repository' && e.name === 'ghcr.io/acme/a' && e.actions.length === 1 && e.actions[0] === 'pull'));
    return granted.length === 0 ? undefined : `token grants ${JSON.stringify(granted).slice(0, 300)}`;
  };
}
