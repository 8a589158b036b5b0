// The negative suite's `headers` kind (what an Authorization header can get wrong: passwords,
// users, ':' games, bytes that are not UTF-8, sizes, repeats, scheme spellings, headers that
// only look like credentials) and its `scopes` kind (GET /token asking for b in every spelling,
// several scopes at once, catalog, huge lists, garbage; the token it gets is then used for b).
import { pick } from './hostile-answers.ts';
import { MACHINE_TOKEN, PASSWORDS } from './auth-negative-wharf.ts';
import { pipelined } from './raw-http-client.ts';
import {
  aOps,
  ask,
  basic,
  bearsToken,
  bOps,
  chance,
  grantCheck,
  int,
  issuedToken,
  refusal,
  short,
  tokenAnswer,
  type AttackCase,
  type Caller,
  type Credential,
  type Outcome,
  type Rand,
  type Step,
  type World,
} from './auth-attack-model.ts';

type Who = Caller | 'node400' | 'huge';
type Lines = Array<readonly [string, string]>;

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64');
const hex = (rand: Rand) => int(rand, 2 ** 48).toString(16).padStart(12, '0');

function headerVariants(w: World, rand: Rand): Array<() => readonly [string, Who, Lines, Buffer?]> {
  const A = PASSWORDS.alice;
  const aliceBasic = basic('alice', A);
  const aliceB64 = aliceBasic.slice(6);
  const tok = w.aliceToken;
  const auth = (v: string): Lines => [['Authorization', v]];
  const bad = (label: string, v: string | Lines) => () => [label, 'bad', typeof v === 'string' ? auth(v) : v] as const;
  const none = (label: string, lines: Lines) => () => [label, 'none', lines] as const;
  const alice = (label: string, lines: Lines) => () => [label, 'alice', lines] as const;
  return [
    bad('alice, wrong password', basic('alice', `wrong-${hex(rand)}-pw`)),
    bad('bob, wrong password', basic('bob', `wrong-${hex(rand)}-pw`)),
    bad('unknown user', basic(`nobody-${hex(rand)}`, A)),
    bad('empty user', basic('', A)),
    bad('no colon', `Basic ${b64(`alice${A}`)}`),
    bad("password with a leading ':'", basic('alice', `:${A}`)),
    bad("password with a trailing ':'", basic('alice', `${A}:`)),
    bad('user with spaces or case', basic(pick(rand, ['alice ', ' alice', 'ALICE', 'Alice', 'alice\u0000', 'alice\t']), A)),
    bad("each other's password", pick(rand, [basic('bob', A), basic('alice', PASSWORDS.bob)])),
    bad('password not UTF-8', `Basic ${b64(Buffer.concat([Buffer.from('alice:'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from(A)]))}`),
    bad('user not UTF-8', `Basic ${b64(Buffer.concat([Buffer.from([0xc3, 0x28, 0xe9]), Buffer.from(`:${A}`)]))}`),
    bad('password with a newline', basic('alice', `${A}\n`)),
    bad('empty password', `Basic ${b64('alice:')}`),
    bad('8 KB of x', `Basic ${'x'.repeat(8000)}`),
    bad('6 KB password', basic('alice', `${A}${'p'.repeat(6000)}`)),
    bad('Basic alone or padding only', pick(rand, ['Basic', 'Basic =', 'Basic ====', 'Basic :', `Basic ${b64(':')}`])),
    bad('base64url alphabet or inner space', pick(rand, [`Basic ${aliceB64.replace(/\+/g, '-').replace(/\//g, '_')}-`, `Basic ${aliceB64.slice(0, 8)} ${aliceB64.slice(8)}`, `Basic ${aliceB64}\t${aliceB64}`])),
    bad('unknown scheme', pick(rand, [`Digest username="alice", realm="wharf", nonce="${hex(rand)}", uri="/v2/", response="${hex(rand)}${hex(rand)}"`, `Negotiate ${b64(hex(rand).repeat(4))}`, `NTLM TlRMTVNTUAABAAAAB4IIog${hex(rand)}`, `AWS4-HMAC-SHA256 Credential=AKIA${hex(rand)}/x, Signature=${hex(rand)}${hex(rand)}`, `Token ${MACHINE_TOKEN}`, `OAuth oauth_token="${hex(rand)}${hex(rand)}"`, 'Bearer', `Bearer\t${tok}`, `Basic\t${aliceB64}`, `Bearer: ${tok}`, `${tok}`])),
    bad('machine token games', pick(rand, [`Bearer ${MACHINE_TOKEN}x`, `Bearer ${MACHINE_TOKEN.slice(0, -1)}`, `Bearer ${MACHINE_TOKEN.toUpperCase()}`, `Bearer "${MACHINE_TOKEN}"`, basic('ci', MACHINE_TOKEN), `Bearer ${MACHINE_TOKEN} ${MACHINE_TOKEN}`])),
    bad('two credentials in one header', pick(rand, [`Bearer ${tok},Bearer ${tok}`, `Bearer ${tok} x`, `${aliceBasic} extra`, `${aliceBasic}, Bearer ${tok}`])),
    bad('raw bytes that are not UTF-8', pick(rand, ['Basic \xc3\x28\xff\xfe', `Bearer \xe9\xe9${hex(rand)}${hex(rand)}`, `Bearer ${tok.slice(0, 20)}\xff${tok.slice(21)}`])),
    bad('a bad one first, then alice', [['Authorization', basic('alice', `wrong-${hex(rand)}-pw`)], ['Authorization', aliceBasic]]),
    bad('garbage first, then alice', [['Authorization', `Bearer ${hex(rand)}${hex(rand)}`], ['Authorization', `Bearer ${tok}`]]),
    none('no header', []),
    none('empty Authorization', auth(pick(rand, ['', '   ']))),
    none("bob's password as Proxy-Authorization", [['Proxy-Authorization', basic('bob', PASSWORDS.bob)]]),
    none('credentials under other names', [[pick(rand, ['Authorisation', 'X-Authorization', 'X-Registry-Auth', 'Auth']), pick(rand, [aliceBasic, `Bearer ${MACHINE_TOKEN}`])]]),
    none('forwarded-client headers naming bob', [
      ['X-Forwarded-For', '10.0.0.1'],
      ['X-Real-IP', '10.0.0.1'],
      ['Forwarded', 'for=10.0.0.1;proto=https'],
      ['X-Wharf-Client-Address', '10.1.1.1'],
      ['X-Wharf-Forward-Secret', hex(rand)],
      ['X-Wharf-Client-Cert-Cn', 'bob'],
      ['X-Wharf-Client-Cert-Sha256', Array.from({ length: 32 }, () => 'AB').join(':')],
      ['X-Wharf-Client-Tls', '1'],
    ]),
    none('a cookie', [['Cookie', `session=${hex(rand)}; token=${hex(rand)}`]]),
    alice('alice Basic', auth(aliceBasic)),
    alice('alice Basic without padding', auth(`Basic ${aliceB64.replace(/=+$/, '')}`)),
    alice('scheme case', auth(pick(rand, [`basic ${aliceB64}`, `BASIC ${aliceB64}`, `bearer ${tok}`, `BEARER ${tok}`, `bEaReR ${tok}`]))),
    alice('extra spaces', auth(pick(rand, [`Bearer  ${tok}`, ` Bearer ${tok} `, `Basic   ${aliceB64}`, `\tBearer ${tok}\t`]))),
    alice('header name case', [[pick(rand, ['authorization', 'AUTHORIZATION', 'aUtHoRiZaTiOn']), `Bearer ${tok}`]]),
    alice('alice first, garbage after', [['Authorization', pick(rand, [aliceBasic, `Bearer ${tok}`])], ['Authorization', pick(rand, [`Bearer ${hex(rand)}`, basic('bob', 'x'), 'Basic'])]]),
    alice('alice, 500 padding headers', [['Authorization', `Bearer ${tok}`], ...Array.from({ length: 500 }, (_, i) => [`X-Pad-${i}`, 'v'] as const)]),
    alice('alice, forwarded-client headers naming bob', [['Authorization', `Bearer ${tok}`], ['X-Wharf-Client-Cert-Cn', 'bob'], ['X-Forwarded-For', '10.0.0.1']]),
    alice("alice, and bob's password as Proxy-Authorization", [['Authorization', `Bearer ${tok}`], ['Proxy-Authorization', basic('bob', PASSWORDS.bob)]]),
    alice('alice, Expect: 100-continue', [['Authorization', `Bearer ${tok}`], ['Expect', '100-continue']]),
    () => ['alice, with a chunked body', 'alice', auth(`Bearer ${tok}`), Buffer.from(`{"pad":"${'z'.repeat(int(rand, 5000))}"}`)] as const,
    () => ['no credentials, with a chunked body', 'none', [], Buffer.from('x'.repeat(1 + int(rand, 3000)))] as const,
    () => ['ci machine token', 'ci', auth(pick(rand, [`Bearer ${MACHINE_TOKEN}`, `bearer ${MACHINE_TOKEN}`]))] as const,
    () => ['ci, then garbage', 'ci', [['Authorization', `Bearer ${MACHINE_TOKEN}`], ['Authorization', 'Bearer x']]] as const,
    () => ['control bytes in the header', 'node400', auth(`Bearer ${tok.slice(0, 30)}${pick(rand, ['\x01', '\x7f', '\x00', '\x1b'])}${tok.slice(30)}`)] as const,
    () => ['malformed header line', 'node400', [pick(rand, [['Authorization ', `Bearer ${tok}`], ['Author ization', `Bearer ${tok}`], ['Authorization\x01', 'x']] as const)]] as const,
    () => ['both Content-Length and Transfer-Encoding', 'node400', [['Authorization', `Bearer ${tok}`], ['Transfer-Encoding', 'chunked'], ['Content-Length', '3']]] as const,
    () => ['20 to 100 KB Authorization', 'huge', auth(pick(rand, [`Bearer ${'A'.repeat(20_000)}`, `Basic ${b64(`alice:${'p'.repeat(30_000)}`)}`, `Bearer ${tok}${'.x'.repeat(50_000)}`]))] as const,
    () => ['2000 headers', 'huge', [['Authorization', `Bearer ${tok}`], ...Array.from({ length: 2000 }, (_, i) => [`X-P-${i}`, 'vvvvvvvvvv'] as const)]] as const,
    () => ['a 20 KB header beside alice', 'huge', [['Authorization', `Bearer ${tok}`], ['X-Junk', 'j'.repeat(20_000)]]] as const,
  ];
}

export function headersCase(w: World, rand: Rand): Pick<AttackCase, 'variant' | 'next'> {
  if (chance(rand, 0.12)) return pipelineCase(w, rand);
  if (chance(rand, 0.1)) return hostCase(w, rand);
  const [label, who, lines, chunked] = pick(rand, headerVariants(w, rand))();
  const cred: Credential = { who: who === 'node400' || who === 'huge' ? 'bad' : who, label, headers: lines, token: bearsToken(lines, w.aliceToken) };
  const where = rand();
  let target: string;
  let allowed: Outcome[];
  let servesA = false;
  let check: Step['check'];
  const fixed = who === 'node400' ? 400 : who === 'huge' ? 431 : undefined;
  if (where < 0.6) {
    target = `/v2/${pick(rand, ['ghcr.io/acme/b', 'acme/b'])}/${pick(rand, bOps(w)).path}`;
    if (target.startsWith('/v2/acme/b')) target += '?ns=ghcr.io';
    allowed = [fixed ?? refusal(cred.who)];
  } else if (where < 0.8) {
    target = `/v2/ghcr.io/acme/a/${pick(rand, aOps(w)).path}`;
    allowed = [fixed ?? (cred.who === 'alice' || cred.who === 'ci' ? 200 : 401)];
    servesA = true;
  } else {
    target = `/token?service=wharf&scope=${encodeURIComponent(pick(rand, ['repository:ghcr.io/acme/b:pull', 'repository:ghcr.io/acme/b:*', 'registry:catalog:*']))}`;
    allowed = [fixed ?? tokenAnswer(cred)];
    check = grantCheck(cred.who);
  }
  const method = target.startsWith('/token') || chunked ? 'GET' : undefined;
  const { request, summary } = ask(w, rand, target, cred, { method, body: chunked, chunked: chunked !== undefined });
  return { variant: `${who}: ${label}`, next: (answers) => (answers.length === 0 ? { request, summary, allowed, servesA, check } : undefined) };
}

/**
 * Two to four requests of different callers written at once on one connection: each is
 * answered as its own credentials say, whatever the one before it carried.
 */
function pipelineCase(w: World, rand: Rand): Pick<AttackCase, 'variant' | 'next'> {
  const tok: Credential = { who: 'alice', label: "alice's token", headers: [['Authorization', `Bearer ${w.aliceToken}`]] };
  const anon: Credential = { who: 'none', label: 'no credentials', headers: [] };
  const ci: Credential = { who: 'ci', label: 'ci', headers: [['Authorization', `Bearer ${MACHINE_TOKEN}`]] };
  const wrong: Credential = { who: 'bad', label: 'wrong password', headers: [['Authorization', basic('alice', `wrong-${hex(rand)}-pw`)]] };
  const kinds: Array<() => Step> = [
    () => ({ ...ask(w, rand, `/v2/ghcr.io/acme/a/${pick(rand, aOps(w)).path}`, pick(rand, [tok, ci])), allowed: [200], servesA: true }),
    () => {
      const cred = pick(rand, [tok, anon, ci, wrong]);
      return { ...ask(w, rand, `/v2/ghcr.io/acme/b/${pick(rand, bOps(w)).path}`, cred), allowed: [refusal(cred.who)] };
    },
    () => ({ ...ask(w, rand, `/v2/ghcr.io/acme/a/blobs/${w.b.layers[1]!.digest}`, tok), allowed: [404] }),
    () => ({ ...ask(w, rand, `/token?service=wharf&scope=${encodeURIComponent('repository:ghcr.io/acme/b:pull')}`, anon, { method: 'GET' }), allowed: [200], check: grantCheck('none') }),
  ];
  const steps = Array.from({ length: 2 + int(rand, 3) }, () => pick(rand, kinds)());
  const last = steps.at(-1)!;
  const earlier = steps.slice(0, -1);
  const step: Step = { ...last, request: pipelined(steps.map((s) => s.request)), summary: `pipelined: ${steps.map((s) => s.summary).join(' | ')}`, earlier };
  return { variant: `${steps.length} pipelined requests`, next: (answers) => (answers.length === 0 ? step : undefined) };
}

function bScopes(): string[] {
  return [
    'repository:ghcr.io/acme/b:pull',
    'repository:ghcr.io/acme/b:*',
    'repository:ghcr.io/acme/b:pull,push',
    'repository:ghcr.io/acme/b:push,pull,delete',
    'repository:GHCR.IO/acme/b:pull',
    'repository:ghcr.io/ACME/b:pull',
    'repository:ghcr.io/acme/B:pull',
    'repository:ghcr.io/acme/b/:pull',
    'repository:ghcr.io//acme/b:pull',
    'repository:ghcr.io/acme/a/../b:pull',
    'repository:ghcr.io/acme/./b:pull',
    'repository:ghcr.io%2facme%2fb:pull',
    'repository:ghcr.io:443/acme/b:pull',
    'repository:localhost:5000/acme/b:pull',
    'repository:acme/b:pull',
    'repository:docker.io/acme/b:pull',
    'repository:library/acme/b:pull',
    'repository(plugin):ghcr.io/acme/b:pull',
    'repository:ghcr.io/acme/b:PULL',
    'repository:ghcr.io/acme/b:pull:pull',
    'repository:ghcr.io/acme/b:',
    'repository:ghcr.io/acme/b',
    'repository::pull',
    'REPOSITORY:ghcr.io/acme/b:pull',
    'registry:catalog:*',
    'registry:catalog:pull',
    'registry:ghcr.io/acme/b:pull',
    'repository:ghcr.io/acme/b\u0000:pull',
    'repository:ghcr.io/acme/b\n:pull',
    'repository:ghcr.io/acme/*:pull',
    'repository:ghcr.io/acme/**:pull',
    'repository:ghcr.io/**:pull',
    'repository:**:pull',
    'repository:*:*',
    'repository:ghcr.io/acme/{a,b}:pull',
    'repository:ghcr.io/acme/[ab]:pull',
    'repository:ghcr.io/acme/b?ns=ghcr.io:pull',
    'repository:ghcr.io/acme/a:pull,push',
    'repository:ghcr.io/acme/b\u0301:pull',
  ];
}

const A_SCOPE = 'repository:ghcr.io/acme/a:pull';

/** Node refuses a request head over 16 KiB with 431; sizes near the edge are a mistake in the case. */
export function beyondHeadLimit(size: number): boolean {
  if (Math.abs(size - 16_384) < 1500) throw new Error(`a case's request head is ${size} bytes, too near Node's 16 KiB limit to know its status`);
  return size > 16_384;
}

/** The scope parameters, already encoded. */
function scopeQuery(rand: Rand): { params: string[]; label: string } {
  const one = () => pick(rand, bScopes());
  const encode = (s: string) => (chance(rand, 0.75) ? encodeURIComponent(s) : s.replace(/[\s%&#\u0000-\u001f\u007f-\uffff]/g, (c) => encodeURIComponent(c)));
  const r = rand();
  if (r < 0.4) {
    const s = one();
    return { params: [encode(s)], label: short(s, 50) };
  }
  if (r < 0.55) return { params: [encode(`${A_SCOPE} ${one()}`)], label: 'a and b in one parameter' };
  if (r < 0.7) return { params: [encode(one()), encode(A_SCOPE), encode(one())], label: 'several parameters' };
  if (r < 0.8) {
    // Well under or well over Node's 16 KiB head: never near the edge, so the status is certain.
    const n = chance(rand, 0.7) ? 100 + int(rand, 200) : 800 + int(rand, 300);
    const list = Array.from({ length: n }, (_, i) => `repository:junk/r${i}:pull`);
    list.splice(int(rand, n), 0, one(), A_SCOPE);
    const params = chance(rand, 0.5) ? [encode(list.join(' '))] : list.map(encode);
    return { params, label: `${n + 2} scopes` };
  }
  if (r < 0.9) {
    const bytes = Buffer.from(Array.from({ length: 50 + int(rand, 3000) }, () => int(rand, 256)));
    return { params: [encodeURIComponent(bytes.toString('latin1'))], label: 'random bytes' };
  }
  return { params: [pick(rand, ['%ZZ', '%', '%%2', '%E0%A4%A', encodeURIComponent('repository:ghcr.io/acme/b:pull').replace(/%/g, '%25')])], label: 'broken escapes' };
}

export function scopesCase(w: World, rand: Rand): Pick<AttackCase, 'variant' | 'next'> {
  const c = rand();
  const cred: Credential =
    c < 0.5
      ? { who: 'alice', label: 'alice Basic', headers: [['Authorization', basic('alice', PASSWORDS.alice)]] }
      : c < 0.65
        ? { who: 'alice', label: "alice's token", headers: [['Authorization', `Bearer ${w.aliceToken}`]], token: true }
        : c < 0.8
          ? { who: 'ci', label: 'ci machine token', headers: [['Authorization', `Bearer ${MACHINE_TOKEN}`]] }
          : c < 0.95
            ? { who: 'none', label: 'no credentials', headers: [] }
            : { who: 'bad', label: 'alice, wrong password', headers: [['Authorization', basic('alice', `wrong-${hex(rand)}-pw`)]] };
  const { params, label } = scopeQuery(rand);
  const s = rand();
  const [service, serviceOk] = s < 0.75 ? ['service=wharf&', true] : s < 0.85 ? ['', true] : s < 0.9 ? ['service=WHARF&', false] : s < 0.95 ? ['service=x&service=wharf&', false] : ['service=wharf&service=x&', true];
  const extra = chance(rand, 0.2) ? `&${pick(rand, ['account=bob', 'client_id=docker', 'offline_token=true', 'account=bob&client_id=bob'])}` : '';
  const target = `/token?${service}${params.map((p) => `scope=${p}`).join('&')}${extra}`;
  const first = ask(w, rand, target, cred, { method: 'GET' });
  const huge = beyondHeadLimit(first.request.bytes.length);
  const allowed: Outcome[] = [huge ? 431 : tokenAnswer(cred) === 401 ? 401 : serviceOk ? 200 : 400];
  const useOnB = pick(rand, bOps(w)).path;
  const bName = chance(rand, 0.7) ? 'ghcr.io/acme/b' : 'acme/b';
  const alsoA = chance(rand, 0.4);
  return {
    variant: `scopes ${label} for ${cred.label}${serviceOk ? '' : ', wrong service'}`,
    next(answers) {
      if (answers.length === 0) return { ...first, allowed, check: grantCheck(cred.who) };
      const issued = answers[0]!.status === 200 ? issuedToken(answers[0]!) : undefined;
      if (issued === undefined || typeof issued === 'string' || answers.length > (alsoA ? 2 : 1)) return undefined;
      const anonymous = issued.claims.wharf?.kind === 'anonymous';
      const bearer: Credential = { who: anonymous ? 'none' : cred.who, label: `the token it got (${cred.label})`, headers: [['Authorization', `Bearer ${issued.token}`]] };
      if (answers.length === 1) {
        const next = ask(w, rand, `/v2/${bName}/${useOnB}${bName === 'acme/b' ? '?ns=ghcr.io' : ''}`, bearer);
        return { ...next, allowed: [anonymous ? 401 : 403] };
      }
      const grantsA = (issued.claims.access ?? []).some((e) => e.name === 'ghcr.io/acme/a' && e.actions.includes('pull'));
      const next = ask(w, rand, `/v2/ghcr.io/acme/a/blobs/${w.b.layers[1]!.digest}`, bearer);
      return { ...next, allowed: [anonymous ? 401 : grantsA ? 404 : 403] };
    },
  };
}

/**
 * Host headers a client may write, which go into the default token realm of a challenge; true:
 * no URL can be made of it, which @hono/node-server (or Node, for none) answers 400 before wharf.
 */
const HOSTS: ReadonlyArray<readonly [string | null, string, boolean]> = [
  ['evil"x', 'a quote', false],
  ['ghcr.io', 'another registry', false],
  ['x'.repeat(300), '300 characters', false],
  ['[::1]:5000', 'IPv6', false],
  ['127.0.0.1:1/token?x=', 'a path', true],
  ['a b', 'a space', true],
  ['', 'empty', true],
  ['EVIL.example:99999', 'a bad port', true],
  ['host\xe9', 'a byte that is not ASCII', true],
  ['evil.example", error="x', 'a quoted parameter', true],
  [null, 'none (HTTP/1.1)', true],
];

function hostCase(w: World, rand: Rand): Pick<AttackCase, 'variant' | 'next'> {
  const [host, label, refusedByNode] = pick(rand, HOSTS);
  const cred: Credential = chance(rand, 0.5) ? { who: 'none', label: 'no credentials', headers: [] } : { who: 'alice', label: "alice's token", headers: [['Authorization', `Bearer ${w.aliceToken}`]] };
  const { request, summary } = ask(w, rand, `/v2/ghcr.io/acme/b/${pick(rand, bOps(w)).path}`, cred, { host });
  return { variant: `Host ${label}`, next: (answers) => (answers.length === 0 ? { request, summary: `${summary} Host: ${short(host ?? '(none)', 30)}`, allowed: refusedByNode ? [400] : [refusal(cred.who)] } : undefined) };
}
