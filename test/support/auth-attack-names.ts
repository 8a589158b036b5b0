// Cases of the negative suite that name b's repository every way that might route to it
// (names) and b's digests under a's name and made-up ones (digests). Each spelling names the
// class it falls in, and the class the exact statuses: refused (401 without credentials, 403
// with), invalid name (400: the grammar refuses it before any rule is asked), an unconfigured
// registry (404), too big for Node's 16 KiB head (431).
import { pick } from './hostile-answers.ts';
import {
  ask,
  bOps,
  chance,
  credential,
  emptyReferrers,
  int,
  refusal,
  short,
  single,
  someCaller,
  type AttackCase,
  type Credential,
  type Op,
  type Outcome,
  type Rand,
  type World,
} from './auth-attack-model.ts';

export type Built = Pick<AttackCase, 'variant' | 'next'>;

/** b: routes to ghcr.io/acme/b. other: to a repository no rule gives anyone. a: normalises to a (a-by-ns: through ?ns=). */
type NameClass = 'b' | 'other' | 'a' | 'a-by-ns' | 'invalid' | 'unrouted' | 'huge' | 'fuzzy';

function bNames(w: World): Array<readonly [string, string, NameClass]> {
  return [
    ['ghcr.io/acme/b', '', 'b'],
    ['acme/b', '?ns=ghcr.io', 'b'],
    ['acme/b', '?ns=GHCR.IO', 'b'],
    ['acme/b', '?ns=Ghcr.Io&n=1', 'b'],
    ['ghcr.io/acme/b', '?ns=ghcr.io', 'b'],
    ['ghcr.io/acme/b', '?ns=', 'b'],
    ['ghcr.io/acme/b', '?', 'b'],
    ['ghcr.io/acme/b', '?ns=ghcr.io&ns=docker.io', 'b'],
    ['ghcr.io/acme/a/../b', '', 'b'],
    ['ghcr.io/acme/./b', '', 'b'],
    ['ghcr.io/acme/a/%2e%2e/b', '', 'b'],
    ['ghcr.io/acme/a/%2E%2E/b', '', 'b'],
    ['ghcr.io/acme/a/.%2e/b', '', 'b'],
    ['ghcr.io/x/y/../../acme/b', '', 'b'],
    ['../v2/ghcr.io/acme/b', '', 'b'],
    ['library/../ghcr.io/acme/b', '', 'b'],
    ['ghcr.io/%61cme/b', '', 'b'],
    ['ghcr.io/acme/%62', '', 'b'],
    ['%67hcr.io/acme/b', '', 'b'],
    ['ghcr%2Eio/acme/b', '', 'b'],
    ['acme/b', '', 'other'],
    ['docker.io/acme/b', '', 'other'],
    ['acme/b', '?ns=docker.io', 'other'],
    ['library/acme/b', '', 'other'],
    ['docker.io/library/acme/b', '', 'other'],
    ['ghcr.io/library/acme/b', '', 'other'],
    ['ghcr.io/ghcr.io/acme/b', '', 'other'],
    ['docker.io/ghcr.io/acme/b', '', 'other'],
    ['ghcr.io/acme/b', '?ns=docker.io', 'other'],
    ['docker.io/acme/b', '?ns=ghcr.io', 'other'],
    ['localhost/acme/b', '', 'other'],
    ['registry-1.docker.io/acme/b', '', 'other'],
    ['ghcr.io/acme/b/b', '', 'other'],
    ['ghcr.io/acme/bb', '', 'other'],
    ['ghcr.io/acme/b__x', '', 'other'],
    ['ghcr.io/acme/b.b', '', 'other'],
    ['ghcr.io/acme', '', 'other'],
    ['ghcr.io/b', '', 'other'],
    ['b', '?ns=ghcr.io', 'other'],
    ['ghcr.io/acme/b/../../acme', '', 'other'],
    ['ghcr.io/acme/b/../a', '', 'a'],
    ['ghcr.io/acme/%62/../a', '', 'a'],
    ['acme/a', '?ns=ghcr.io', 'a-by-ns'],
    ['GHCR.IO/acme/b', '', 'invalid'],
    ['ghcr.io/ACME/b', '', 'invalid'],
    ['ghcr.io/acme/B', '', 'invalid'],
    ['ghcr.io//acme/b', '', 'invalid'],
    ['ghcr.io/acme//b', '', 'invalid'],
    ['ghcr.io/acme/b/', '', 'invalid'],
    ['/ghcr.io/acme/b', '', 'invalid'],
    ['ghcr.io%2facme%2fb', '', 'invalid'],
    ['ghcr.io/acme%2fb', '', 'invalid'],
    ['ghcr.io/acme%2Fb', '', 'invalid'],
    ['ghcr.io/acme/b%00', '', 'invalid'],
    ['ghcr.io/acme/b%20', '', 'invalid'],
    ['ghcr.io/acme/b%252f', '', 'invalid'],
    ['ghcr.io/acme/b%C3%A9', '', 'invalid'],
    ['ghcr.io/acme/%C0%AFb', '', 'invalid'],
    ['ghcr.io:443/acme/b', '', 'invalid'],
    [`${w.upstreamHost}/acme/b`, '', 'invalid'],
    ['http://ghcr.io/acme/b', '', 'invalid'],
    ['ghcr.io\\acme\\b', '', 'invalid'],
    ['ghcr.io/acme/b\\', '', 'invalid'],
    ['ghcr.io/acme/b\t', '', 'invalid'],
    ['ghcr.io/acme/b\x7f', '', 'invalid'],
    ['ghcr.io/acme/b\xff', '', 'invalid'],
    ['ghcr.io/acme/b\x00', '', 'invalid'],
    ['ghcr.io/acme/-b', '', 'invalid'],
    ['ghcr.io/acme/b-', '', 'invalid'],
    ['ghcr.io/acme/b.', '', 'invalid'],
    ['ghcr.io/acme/.b', '', 'invalid'],
    ['ghcr.io/acme/b..', '', 'invalid'],
    [`ghcr.io/${'x/'.repeat(130)}acme/b`, '', 'invalid'],
    [`ghcr.io/acme/${'b'.repeat(300)}`, '', 'invalid'],
    [`ghcr.io/acme/b${'/b'.repeat(4000)}`, '', 'invalid'],
    ['acme/b', '?ns=quay.io', 'unrouted'],
    ['acme/b', `?ns=${w.upstreamHost}`, 'unrouted'],
    ['acme/b', '?ns=ghcr.io.', 'unrouted'],
    ['acme/b', '?ns=ghcr.io%00', 'unrouted'],
    ['acme/b', '?ns=http://ghcr.io', 'unrouted'],
    [`ghcr.io/acme/b${'/x'.repeat(9000)}`, '', 'huge'],
  ];
}

const INSERTS = ['/', '//', '.', '..', '/../', '/./', '%2f', '%2e', '%2E%2E', '%00', '%', '%%', '\\', ';', '@', ':', '~', '_', '-', 'B', '%5c', '%252e', '\u00e9'];

/** b's name with 1 to 3 random edits: the class of each result is not worth predicting, only that it is refused. */
function fuzzedName(rand: Rand): string {
  let name = 'ghcr.io/acme/b';
  for (let n = 1 + int(rand, 3); n > 0; n--) {
    const at = int(rand, name.length + 1);
    const r = rand();
    if (r < 0.6) name = name.slice(0, at) + pick(rand, INSERTS) + name.slice(at);
    else if (r < 0.8) name = name.slice(0, at) + name.slice(at, at + 1).toUpperCase() + name.slice(at + 1);
    else name = name.slice(0, at) + name.slice(at + 1);
  }
  return name;
}

/** The statuses for op asked under a name of this class. */
function namesAllowed(cls: NameClass, op: Op, cred: Credential): { allowed: Outcome[]; servesA: boolean } {
  const who = cred.who;
  switch (cls) {
    case 'b':
    case 'other':
      return { allowed: [refusal(who)], servesA: false };
    case 'invalid':
      return { allowed: [400], servesA: false };
    case 'unrouted':
      return { allowed: [404], servesA: false };
    case 'huge':
      return { allowed: [431], servesA: false };
    case 'fuzzy':
      return { allowed: [400, 404, refusal(who)], servesA: false };
    case 'a':
    case 'a-by-ns': {
      if (who === 'none' || who === 'bad') return { allowed: [401], servesA: false };
      // Under a's name, b's tag is a's own tag; b's digests are unknown there. Referrers of any
      // digest are a 200 list (the spec forbids a 404): what a has, none of b.
      if (op.what === 'referrers') return { allowed: [200], servesA: false };
      return op.what === 'tag' || op.what === 'tags' ? { allowed: [200], servesA: true } : { allowed: [404], servesA: false };
    }
  }
}

export function namesCase(w: World, rand: Rand): Built {
  const fuzzy = chance(rand, 0.3);
  const [name, query, cls] = fuzzy ? [fuzzedName(rand), chance(rand, 0.2) ? pick(rand, ['?ns=ghcr.io', '?ns=docker.io', '?x=..%2f']) : '', 'fuzzy' as const] : pick(rand, bNames(w));
  const op = pick(rand, bOps(w));
  const cred = someCaller(w, rand);
  const { allowed, servesA } = namesAllowed(cls, op, cred);
  const { request, summary } = ask(w, rand, `/v2/${name}/${op.path}${query}`, cred);
  const check = op.what === 'referrers' ? emptyReferrers : undefined;
  return { variant: `${cls} name ${short(name, 40)}${query} ${op.what}`, next: single({ request, summary, allowed, servesA, ...(check && { check }) }) };
}

function digestRefs(hex: string): Array<readonly [string, 'node400' | 'malformed']> {
  const other = `${hex.slice(0, 10)}${hex[10] === '0' ? '1' : '0'}${hex.slice(11)}`;
  return [
    [`sha256:${hex.slice(1)}`, 'malformed'],
    [`sha256:${hex}0`, 'malformed'],
    [`sha256:${hex.toUpperCase()}`, 'malformed'],
    [`sha512:${hex}${hex}`, 'malformed'],
    [`sha512:${hex}`, 'malformed'],
    [`md5:${hex.slice(0, 32)}`, 'malformed'],
    [`blake3:${hex}`, 'malformed'],
    [`sha256+b64u:${Buffer.from(hex, 'hex').toString('base64url')}`, 'malformed'],
    ['sha256:', 'malformed'],
    ['sha256', 'malformed'],
    [`:${hex}`, 'malformed'],
    [`SHA256:${hex}`, 'malformed'],
    [`sha256:${hex}%00`, 'malformed'],
    [`sha256:${hex}%20x`, 'malformed'],
    [`sha256:${hex}%2f`, 'malformed'],
    [`sha256:${hex};x=1`, 'malformed'],
    [`sha256::${hex}`, 'malformed'],
    [`sha256:${hex}..`, 'malformed'],
    [`sha256:${hex}#x`, 'malformed'],
    [`sha256:${hex.slice(0, 32)}`, 'malformed'],
    ['*', 'malformed'],
    ['%2e%2e', 'malformed'],
    [`sha256:${'0'.repeat(64)}`, 'malformed'],
    [`sha256:${other}`, 'malformed'],
    [`sha256%3A${hex}%3A`, 'malformed'],
    [`sha256:${hex}\x00`, 'node400'],
    [`sha256:${hex}\x01`, 'node400'],
    [`sha256:${hex} x`, 'node400'],
  ];
}

/** a's name, spelled so that it routes to ghcr.io/acme/a (a token for ghcr.io/acme/a names each). */
export const A_NAMES: ReadonlyArray<readonly [string, string]> = [
  ['ghcr.io/acme/a', ''],
  ['acme/a', '?ns=ghcr.io'],
  ['ghcr.io/acme/./a', ''],
  ['ghcr.io/acme/a', '?ns=GHCR.IO'],
];
const MADE_UP = ['ghcr.io/acme/c', 'ghcr.io/acme/a/b', 'ghcr.io/acme/a-b', 'ghcr.io/acme', 'ghcr.io/x', 'acme/a', 'library/b', 'docker.io/acme/a', 'ghcr.io/acme/a/a', 'ghcr.io/acme/b2'];

export function digestsCase(w: World, rand: Rand): Built {
  const b = w.b;
  const r = rand();
  const cred = r < 0.6 ? credential(w, 'alice-token') : r < 0.75 ? credential(w, 'alice-basic') : r < 0.9 ? credential(w, 'ci') : credential(w, 'none');
  const blob = chance(rand, 0.5);
  const endpoint = blob ? 'blobs' : chance(rand, 0.9) ? 'manifests' : 'referrers';
  const exact = [b.manifest.digest, b.config.digest, b.layers[0]!.digest, b.layers[1]!.digest];
  const extra: Array<readonly [string, string]> = chance(rand, 0.15) ? [pick(rand, [['Range', 'bytes=0-'], ['If-None-Match', `"${pick(rand, exact)}"`], ['Range', 'bytes=-16']] as const)] : [];
  const shape = rand();
  let name: string;
  let query = '';
  let ref: string;
  let allowed: Outcome[];
  let variant: string;
  if (shape < 0.55) {
    [name, query] = pick(rand, A_NAMES);
    ref = pick(rand, exact);
    if (chance(rand, 0.15)) ref = ref.replace(':', pick(rand, ['%3A', '%3a']));
    // Referrers of any digest are a 200 list (the spec forbids a 404 there) holding what a's own
    // manifests and upstream list: none for b's digest. The judge still refuses any byte of b.
    allowed = cred.who === 'none' ? [401] : endpoint === 'referrers' ? [200] : [404];
    variant = `b's digest under a (${endpoint})`;
  } else if (shape < 0.75) {
    name = pick(rand, MADE_UP);
    ref = pick(rand, exact);
    allowed = [refusal(cred.who)];
    variant = `b's digest under a made-up name (${endpoint})`;
  } else {
    [name, query] = pick(rand, A_NAMES);
    const [malformed, how] = pick(rand, digestRefs(pick(rand, exact).slice(7)));
    ref = malformed;
    // After a '#', the query is part of the fragment: `acme/a` then routes to docker.io, not a's ghcr.io.
    const lostNs = malformed.includes('#') && query.startsWith('?ns=') && !name.startsWith('ghcr.io/');
    // A digest mangled into another well-formed one is, for referrers, a digest with no referrers (200).
    const unknown: Outcome[] = endpoint === 'referrers' ? [200, 400] : [400, 404];
    allowed = how === 'node400' ? [400] : cred.who === 'none' ? [401] : lostNs ? [refusal(cred.who)] : unknown;
    variant = `malformed digest under a (${endpoint})`;
  }
  const { request, summary } = ask(w, rand, `/v2/${name}/${endpoint}/${ref}${query}`, cred, { extra });
  return { variant, next: single({ request, summary, allowed, ...(endpoint === 'referrers' && { check: emptyReferrers }) }) };
}

