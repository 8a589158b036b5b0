// Bearer tokens that must not work, for the negative suite's `tokens` kind. Signed with wharf's
// own key (jose, from the key file) but wrong in one claim: expired, not yet valid, another
// audience or issuer, no or a malformed access claim, claims missing; signed with wharf's key and
// well-formed but naming b for alice (valid, so the rules must refuse: 403); signed by another
// key, `alg: none`, HMAC keyed with wharf's public key; alice's real token tampered (access, sub,
// a flipped signature byte), truncated, with extra dots, not base64url, and 100 KB big.
import { CompactSign } from 'jose';
import { createPublicKey, sign as signWith, type KeyObject } from 'node:crypto';
import { MACHINE_TOKEN } from './auth-negative-wharf.ts';
import { pick } from './hostile-answers.ts';
import { aOps, ask, bOps, chance, int, issuedToken, short, single, type AttackCase, type Credential, type Outcome, type Rand, type Step, type World } from './auth-attack-model.ts';

/** invalid: 401 everywhere. denied: a valid user or machine the rules refuse (403; the ping 200). anon: valid, anonymous (401). huge: 431. */
type Validity = 'invalid' | 'denied' | 'anon' | 'huge';

interface Forgery {
  readonly label: string;
  readonly token: string;
  readonly validity: Validity;
}

const b64 = (x: string | Buffer) => Buffer.from(x).toString('base64url');
const enc = (x: unknown) => new TextEncoder().encode(typeof x === 'string' ? x : JSON.stringify(x));
const B_ACCESS = [{ type: 'repository', name: 'ghcr.io/acme/b', actions: ['pull'] }];

function claims(w: World, rand: Rand, over: Record<string, unknown> = {}, drop: readonly string[] = []): Record<string, unknown> {
  const now = w.now;
  const base: Record<string, unknown> = {
    access: B_ACCESS,
    wharf: { kind: 'user', groups: [] },
    iss: 'wharf',
    sub: 'alice',
    aud: 'wharf',
    iat: now,
    nbf: now - 30,
    exp: now + 300,
    jti: `forged-${int(rand, 1e12)}`,
    ...over,
  };
  for (const key of drop) delete base[key];
  return base;
}

/** A compact JWS signed the way wharf signs (EdDSA, its kid), by jose. */
async function real(w: World, payload: unknown, header: Record<string, unknown> = {}, key: KeyObject = w.keys.real): Promise<string> {
  return new CompactSign(enc(payload)).setProtectedHeader({ alg: 'EdDSA', kid: w.keys.kid, typ: 'JWT', ...header }).sign(key);
}

/** Header and payload as given (any alg), signed with Ed25519 by hand: for headers jose would refuse to write. */
function byHand(header: unknown, payload: unknown, key: KeyObject | undefined): string {
  const data = `${b64(JSON.stringify(header))}.${b64(typeof payload === 'string' ? payload : JSON.stringify(payload))}`;
  return `${data}.${key ? b64(signWith(null, Buffer.from(data), key)) : ''}`;
}

function flipByteIn(part: string, rand: Rand): string {
  const bytes = Buffer.from(part, 'base64url');
  bytes[int(rand, bytes.length)]! ^= 1 << int(rand, 8);
  return b64(bytes);
}

function tamper(token: string, edit: (claims: Record<string, unknown>) => void): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  edit(payload);
  return `${h}.${b64(JSON.stringify(payload))}.${s}`;
}

const randomB64 = (rand: Rand, n: number) => Buffer.from(Array.from({ length: n }, () => int(rand, 256))).toString('base64url');

async function forge(w: World, rand: Rand): Promise<Forgery> {
  const now = w.now;
  const alice = w.aliceToken;
  const [ah, ap, as] = alice.split('.') as [string, string, string];
  const kid = w.keys.kid;
  const pem = w.keys.realPublicPem;
  const variants: Array<() => Promise<Forgery> | Forgery> = [
    async () => ({ label: 'real key, expired, access b', token: await real(w, claims(w, rand, { iat: now - 400, nbf: now - 430, exp: now - 10 })), validity: 'invalid' }),
    async () => ({ label: 'real key, expired, access a', token: await real(w, claims(w, rand, { iat: now - 400, nbf: now - 430, exp: now - 10, access: [{ type: 'repository', name: 'ghcr.io/acme/a', actions: ['pull'] }] })), validity: 'invalid' }),
    async () => ({ label: 'real key, exp 1', token: await real(w, claims(w, rand, { exp: 1 })), validity: 'invalid' }),
    async () => ({ label: 'real key, exp a string', token: await real(w, claims(w, rand, { exp: String(now + 300) })), validity: 'invalid' }),
    async () => ({ label: 'real key, exp null', token: await real(w, claims(w, rand, { exp: null })), validity: 'invalid' }),
    async () => ({ label: 'real key, no exp', token: await real(w, claims(w, rand, {}, ['exp'])), validity: 'invalid' }),
    async () => ({ label: 'real key, exp far away, access b', token: await real(w, claims(w, rand, { exp: 99_999_999_999 })), validity: 'denied' }),
    async () => ({ label: 'real key, exp 1e308, access b', token: await real(w, claims(w, rand, { exp: 1e308 })), validity: 'denied' }),
    async () => ({ label: 'real key, fractional exp, access b', token: await real(w, claims(w, rand, { exp: now + 300.5 })), validity: 'denied' }),
    async () => ({ label: 'real key, nbf in the future', token: await real(w, claims(w, rand, { nbf: now + 600 })), validity: 'invalid' }),
    async () => ({ label: 'real key, no nbf', token: await real(w, claims(w, rand, {}, ['nbf'])), validity: 'invalid' }),
    async () => ({ label: 'real key, iat in the future, access b', token: await real(w, claims(w, rand, { iat: now + 600 })), validity: 'denied' }),
    async () => ({ label: 'real key, no iat', token: await real(w, claims(w, rand, {}, ['iat'])), validity: 'invalid' }),
    async () => ({ label: 'real key, no jti', token: await real(w, claims(w, rand, {}, ['jti'])), validity: 'invalid' }),
    async () => ({ label: 'real key, no sub', token: await real(w, claims(w, rand, {}, ['sub'])), validity: 'invalid' }),
    async () => ({ label: 'real key, aud other', token: await real(w, claims(w, rand, { aud: pick(rand, ['other', 'WHARF', 'wharf ', ['other'], []]) })), validity: 'invalid' }),
    async () => ({ label: 'real key, aud [other, wharf], access b', token: await real(w, claims(w, rand, { aud: ['other', 'wharf'] })), validity: 'denied' }),
    async () => ({ label: 'real key, no aud', token: await real(w, claims(w, rand, {}, ['aud'])), validity: 'invalid' }),
    async () => ({ label: 'real key, iss other', token: await real(w, claims(w, rand, { iss: pick(rand, ['other', 'WHARF', 'https://auth.docker.io', '']) })), validity: 'invalid' }),
    async () => ({ label: 'real key, no iss', token: await real(w, claims(w, rand, {}, ['iss'])), validity: 'invalid' }),
    async () => ({ label: 'real key, no access claim', token: await real(w, claims(w, rand, {}, ['access'])), validity: 'invalid' }),
    async () => ({
      label: 'real key, malformed access',
      token: await real(w, claims(w, rand, { access: pick(rand, [{}, 'ghcr.io/acme/b', [null], [{ type: 'repository', name: 'ghcr.io/acme/b' }], [{ type: 'repository', name: 'ghcr.io/acme/b', actions: 'pull' }], [{ type: 'blob', name: 'ghcr.io/acme/b', actions: ['pull'] }], [{ type: 'repository', name: 7, actions: ['pull'] }]]) })),
      validity: 'invalid',
    }),
    async () => ({
      label: 'real key, access naming b',
      token: await real(w, claims(w, rand, { access: pick(rand, [B_ACCESS, [{ type: 'repository', name: 'ghcr.io/acme/b', actions: ['*'] }], [{ type: 'registry', name: 'catalog', actions: ['*'] }], [{ type: 'repository', name: 'GHCR.IO/acme/b', actions: ['pull'] }], [{ type: 'repository', name: 'acme/b', actions: ['pull'] }], []]) })),
      validity: 'denied',
    }),
    async () => ({ label: 'real key, access b twice in the JSON', token: await real(w, `${JSON.stringify(claims(w, rand, { access: [] })).slice(0, -1)},"access":${JSON.stringify(B_ACCESS)}}`), validity: 'denied' }),
    async () => ({ label: 'real key, sub almost bob', token: await real(w, claims(w, rand, { sub: pick(rand, ['BOB', 'bob ', ' bob', 'bob\u0000', 'bob@wharf', 'user:bob', 'Bob']) })), validity: 'denied' }),
    async () => ({ label: 'real key, bob as a machine or certificate', token: await real(w, claims(w, rand, { sub: 'bob', wharf: { kind: pick(rand, ['machine', 'certificate']), groups: [] } })), validity: 'denied' }),
    async () => ({ label: 'real key, bob as anonymous', token: await real(w, claims(w, rand, { sub: 'bob', wharf: { kind: 'anonymous', groups: ['bob'] } })), validity: 'anon' }),
    async () => ({ label: 'real key, groups naming bob', token: await real(w, claims(w, rand, { wharf: { kind: 'user', groups: ['bob', 'admins', 'b'] } })), validity: 'denied' }),
    async () => ({ label: 'real key, bad wharf claim', token: await real(w, claims(w, rand, { wharf: pick(rand, [undefined, { kind: 'admin', groups: [] }, { kind: 'user', groups: 'bob' }, 'user', null]) })), validity: 'invalid' }),
    async () => ({ label: 'real key, typ at+jwt, access b', token: await real(w, claims(w, rand), { typ: pick(rand, ['at+jwt', 'JWS', 'none']) }), validity: 'denied' }),
    async () => ({ label: 'real key, crit header', token: byHand({ alg: 'EdDSA', kid, crit: pick(rand, [['exp'], ['x'], ['b64']]), x: 1, b64: false }, claims(w, rand, { sub: 'bob' }), w.keys.real), validity: 'invalid' }),
    async () => ({ label: 'real key, no kid', token: byHand({ alg: 'EdDSA', typ: 'JWT' }, claims(w, rand, { sub: 'bob' }), w.keys.real), validity: 'invalid' }),
    async () => ({ label: 'real key, alg ES256 in the header', token: byHand({ alg: pick(rand, ['ES256', 'Ed25519', 'RS256', 'eddsa']), kid }, claims(w, rand, { sub: 'bob' }), w.keys.real), validity: 'invalid' }),
    async () => ({ label: 'real key, payload not an object', token: byHand({ alg: 'EdDSA', kid }, pick(rand, ['[]', '"x"', 'null', '{', '42', '{"sub":"bob"']), w.keys.real), validity: 'invalid' }),
    async () => ({ label: 'other key, bob for b, its own kid', token: await real(w, claims(w, rand, { sub: 'bob' }), { kid: w.keys.otherKid }, w.keys.other), validity: 'invalid' }),
    async () => ({ label: "other key, bob for b, wharf's kid", token: await real(w, claims(w, rand, { sub: 'bob' }), {}, w.keys.other), validity: 'invalid' }),
    async () => ({ label: "other key with jwk/jku header, wharf's kid", token: byHand({ alg: 'EdDSA', kid, ...pick(rand, [{ jwk: createPublicKey(w.keys.other).export({ format: 'jwk' }) }, { jku: 'http://127.0.0.1:9/jwks.json' }, { x5u: 'http://127.0.0.1:9/x5' }]) }, claims(w, rand, { sub: 'bob' }), w.keys.other), validity: 'invalid' }),
    async () => ({ label: 'other P-256 key as ES256', token: await new CompactSign(enc(claims(w, rand, { sub: 'bob' }))).setProtectedHeader({ alg: 'ES256', kid: pick(rand, [kid, 'p256']) }).sign(w.keys.otherEc), validity: 'invalid' }),
    () => ({ label: 'alg none', token: byHand({ alg: pick(rand, ['none', 'None', 'NONE', 'nOnE']), kid, typ: 'JWT' }, claims(w, rand, { sub: 'bob' }), undefined), validity: 'invalid' }),
    () => ({ label: "alg none with alice's signature", token: `${b64(JSON.stringify({ alg: 'none', kid }))}.${ap}.${as}`, validity: 'invalid' }),
    async () => {
      const secret = pick(rand, [Buffer.from(pem), createPublicKey(w.keys.real).export({ format: 'der', type: 'spki' }), Buffer.from(JSON.stringify(createPublicKey(w.keys.real).export({ format: 'jwk' }))), Buffer.from(kid), Buffer.from(pem.replace(/\n/g, ''))]);
      const alg = pick(rand, ['HS256', 'HS384', 'HS512']);
      return { label: `${alg} keyed with the public key`, token: await new CompactSign(enc(claims(w, rand, { sub: 'bob' }))).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(new Uint8Array(secret)), validity: 'invalid' };
    },
    () => ({ label: 'tampered: access b', token: tamper(alice, (c) => (c.access = B_ACCESS)), validity: 'invalid' }),
    () => ({ label: 'tampered: sub bob', token: tamper(alice, (c) => (c.sub = 'bob')), validity: 'invalid' }),
    () => ({ label: 'tampered: sub bob, access b', token: tamper(alice, (c) => Object.assign(c, { sub: 'bob', access: B_ACCESS })), validity: 'invalid' }),
    () => ({ label: 'tampered: access b added', token: tamper(alice, (c) => (c.access = [...(c.access as unknown[]), ...B_ACCESS])), validity: 'invalid' }),
    () => ({ label: 'tampered: exp later', token: tamper(alice, (c) => (c.exp = (c.exp as number) + 3600)), validity: 'invalid' }),
    () => ({ label: 'tampered: machine kind', token: tamper(alice, (c) => (c.wharf = { kind: 'machine', groups: [] })), validity: 'invalid' }),
    () => ({ label: "bob's payload, alice's signature", token: `${ah}.${w.bobToken.split('.')[1]}.${as}`, validity: 'invalid' }),
    () => ({ label: 'tampered header kid', token: `${b64(JSON.stringify({ alg: 'EdDSA', kid: `${kid}x`, typ: 'JWT' }))}.${ap}.${as}`, validity: 'invalid' }),
    () => ({ label: 'a signature byte flipped', token: `${ah}.${ap}.${flipByteIn(as, rand)}`, validity: 'invalid' }),
    () => ({ label: 'a payload byte flipped', token: `${ah}.${flipByteIn(ap, rand)}.${as}`, validity: 'invalid' }),
    () => ({ label: 'truncated', token: alice.slice(0, alice.length - 1 - int(rand, 40)), validity: 'invalid' }),
    () => ({ label: 'two parts', token: pick(rand, [`${ah}.${ap}`, `${ah}.${ap}.`, `${ap}.${as}`]), validity: 'invalid' }),
    () => ({ label: 'extra dots', token: pick(rand, [`${alice}.`, `${alice}.x`, `.${alice}`, `${ah}..${ap}.${as}`, `${alice}.${alice}`, `${ah}.${ap}.${as}.${as}.${as}`]), validity: 'invalid' }),
    () => {
      const at = int(rand, alice.length);
      return { label: 'not base64url', token: alice.slice(0, at) + pick(rand, ['+', '/', '=', '%', '!', '\u00e9', '\\', '*', '"']) + alice.slice(at + 1), validity: 'invalid' };
    },
    () => ({ label: 'padded', token: `${alice}${pick(rand, ['=', '==', '%3D'])}`, validity: 'invalid' }),
    () => ({ label: 'case flipped', token: `${ah.toUpperCase()}.${ap}.${as}`, validity: 'invalid' }),
    () => ({ label: 'machine token, changed', token: pick(rand, [`${MACHINE_TOKEN}x`, MACHINE_TOKEN.slice(0, -1), MACHINE_TOKEN.toUpperCase(), `"${MACHINE_TOKEN}"`, `${MACHINE_TOKEN}.${MACHINE_TOKEN}.x`]), validity: 'invalid' }),
    () => ({ label: 'random 12 KB three-part token', token: `${randomB64(rand, 3000)}.${randomB64(rand, 3000)}.${randomB64(rand, 3000)}`, validity: 'invalid' }),
    () => ({ label: 'random 100 KB token', token: `${randomB64(rand, 25_000)}.${randomB64(rand, 25_000)}.${randomB64(rand, 25_000)}`, validity: 'huge' }),
    async () => ({ label: 'real key, 8 KB claim, access b', token: await real(w, claims(w, rand, { pad: 'p'.repeat(8000) })), validity: 'denied' }),
  ];
  return pick(rand, variants)();
}

export async function tokensCase(w: World, rand: Rand): Promise<Pick<AttackCase, 'variant' | 'next'>> {
  const forgery = await forge(w, rand);
  const cred: Credential = { who: 'bad', label: forgery.label, headers: [['Authorization', `Bearer ${forgery.token}`]] };
  const v = forgery.validity;
  const where = rand();
  let target: string;
  let allowed: Outcome[];
  let check: Step['check'];
  if (where < 0.55) {
    target = `/v2/ghcr.io/acme/b/${pick(rand, bOps(w)).path}`;
    allowed = [v === 'invalid' || v === 'anon' ? 401 : v === 'huge' ? 431 : 403];
  } else if (where < 0.8) {
    target = `/v2/ghcr.io/acme/a/${pick(rand, aOps(w)).path}`;
    allowed = [v === 'invalid' || v === 'anon' ? 401 : v === 'huge' ? 431 : 403];
  } else if (where < 0.9) {
    target = '/v2/';
    allowed = [v === 'invalid' || v === 'anon' ? 401 : v === 'huge' ? 431 : 200];
    check = (a) => (a.body.length === 0 || a.body.toString() === '{}' ? undefined : `ping answered ${short(a.body.toString(), 60)}`);
  } else {
    // A token is no credential at /token, whether it verifies or not: it never buys another.
    target = `/token?service=wharf&scope=${encodeURIComponent(pick(rand, ['repository:ghcr.io/acme/b:pull', 'repository:ghcr.io/acme/b:*']))}`;
    allowed = [v === 'huge' ? 431 : 401];
    check = (a) => {
      const issued = issuedToken(a);
      if (typeof issued === 'string') return a.body.length === 0 ? undefined : issued;
      return (issued.claims.access ?? []).length === 0 ? undefined : `token grants ${JSON.stringify(issued.claims.access)}`;
    };
  }
  const { request, summary } = ask(w, rand, target, cred, { method: chance(rand, 0.2) ? 'HEAD' : 'GET' });
  return { variant: `${v} token: ${forgery.label}`, next: single({ request, summary, allowed, check }) };
}
