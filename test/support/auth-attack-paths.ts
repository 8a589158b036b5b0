// Cases of the negative suite that attack beside the name: ranges and conditionals on b's blobs
// under a's name and b's own (ranges), and traversal and odd methods on /token, /v2/, /admin/*,
// /metrics and /status.json (traversal), each with its exact statuses.
import { pick } from './hostile-answers.ts';
import { PASSWORDS } from './auth-negative-wharf.ts';
import {
  ask,
  basic,
  chance,
  credential,
  grantCheck,
  int,
  refusal,
  short,
  single,
  someCaller,
  tokenAnswer,
  type Caller,
  type Credential,
  type Outcome,
  type Rand,
  type World,
} from './auth-attack-model.ts';

import { A_NAMES, type Built } from './auth-attack-names.ts';

const RANGES: ReadonlyArray<readonly [string, boolean]> = [
  ['bytes=0-', false],
  ['bytes=0-0', false],
  ['bytes=-1', false],
  ['bytes=-0', false],
  ['bytes=0-10,20-30', false],
  ['bytes=0-0,-1', false],
  ['bytes=5-2', false],
  ['bytes=99999999999999999999-', false],
  ['bytes=--1', false],
  ['bytes=0-1-2', false],
  ['bytes = 0 - 9', false],
  ['BYTES=0-9', false],
  ['items=0-1', false],
  ['bytes=0x10-', false],
  ['bytes=1e3-', false],
  [`bytes=${'0-0,'.repeat(2000)}0-0`, false],
  ['bytes=-99999999', false],
  ['bytes=0-18446744073709551616', false],
  ['bytes=100-200', false],
  ['bytes=24820-', false],
  ['bytes=41202-', false],
  ['bytes=41203-', false],
  ['', false],
  ['bytes=', false],
  ['bytes=-', false],
  ['bytes=0-\x00', true],
  ['bytes=0-\x7f', true],
];

export function rangesCase(w: World, rand: Rand): Built {
  const { a, b } = w;
  const [range, node400] = pick(rand, RANGES);
  const headers: Array<readonly [string, string]> = [['Range', range]];
  if (chance(rand, 0.2)) headers.push(['Range', pick(rand, RANGES)[0].replace(/[\x00\x7f]/g, '')]);
  const conditional = chance(rand, 0.25);
  const shape = rand();
  const mine = credential(w, pick(rand, ['alice-token', 'alice-basic', 'ci'] as const));
  const method = chance(rand, 0.15) ? 'HEAD' : 'GET';
  let target: string;
  let cred: Credential;
  let allowed: Outcome[];
  let servesA = false;
  let variant: string;
  if (shape < 0.5) {
    const digest = pick(rand, [b.layers[1]!.digest, b.layers[0]!.digest, b.config.digest]);
    const manifest = conditional && chance(rand, 0.5);
    if (conditional) headers.push([pick(rand, ['If-None-Match', 'If-Range', 'If-Match']), `"${manifest ? b.manifest.digest : digest}"`]);
    const [name, query] = pick(rand, A_NAMES);
    target = manifest ? `/v2/${name}/manifests/${b.manifest.digest}${query}` : `/v2/${name}/blobs/${digest}${query}`;
    cred = mine;
    allowed = node400 ? [400] : [404];
    variant = `range on b's ${manifest ? 'manifest' : 'blob'} under a`;
  } else if (shape < 0.7) {
    if (conditional) headers.push(['If-None-Match', `"${b.manifest.digest}"`]);
    target = chance(rand, 0.5) ? `/v2/ghcr.io/acme/b/blobs/${b.layers[1]!.digest}` : `/v2/ghcr.io/acme/b/manifests/${conditional ? b.manifest.digest : 'v1'}`;
    cred = someCaller(w, rand);
    allowed = [node400 ? 400 : refusal(cred.who)];
    variant = "range on b's own name";
  } else {
    target = `/v2/ghcr.io/acme/a/blobs/${pick(rand, [a.layers[1]!.digest, a.layers[0]!.digest, a.config.digest])}`;
    cred = mine;
    allowed = node400 ? [400] : method === 'HEAD' ? [200] : [200, 206, 416];
    servesA = true;
    variant = "range on a's own blob";
  }
  const { request, summary } = ask(w, rand, target, cred, { method, extra: headers });
  return { variant: `${variant}: ${short(range, 30)}`, next: single({ request, summary, allowed, servesA }) };
}

type PathClass = 'bpath' | 'observed' | 'admin' | 'health' | 'notfound' | 'v2unknown' | 'v2upload' | 'token' | 'badtarget';

function traversalPaths(w: World): Array<readonly [string, PathClass]> {
  const bl = w.b.layers[1]!.digest;
  return [
    ['/token/../v2/ghcr.io/acme/b/manifests/v1', 'bpath'],
    [`/metrics/../v2/ghcr.io/acme/b/blobs/${bl}`, 'bpath'],
    [`/v2/ghcr.io/acme/a/blobs/../../b/blobs/${bl}`, 'bpath'],
    ['/admin/../v2/ghcr.io/acme/b/manifests/v1', 'bpath'],
    [`/healthz/%2e%2e/v2/ghcr.io/acme/b/manifests/${w.b.manifest.digest}`, 'bpath'],
    ['/v2/ghcr.io/acme/a/manifests/../../b/manifests/v1', 'bpath'],
    ['/./v2/ghcr.io/acme/b/tags/list', 'bpath'],
    ['/v2/./ghcr.io/acme/b/manifests/v1', 'bpath'],
    ['/v2/ghcr.io/acme/b/manifests/v1?/../../metrics', 'bpath'],
    ['/metrics', 'observed'],
    ['/status.json', 'observed'],
    ['/', 'observed'],
    ['/v2/../metrics', 'observed'],
    ['/./metrics', 'observed'],
    ['/%6detrics', 'observed'],
    ['/metrics?x=/../../', 'observed'],
    ['/status.json?format=html', 'observed'],
    ['/token/../status.json', 'observed'],
    ['/v2/%2e%2e/metrics', 'observed'],
    ['/admin/../metrics', 'observed'],
    ['/healthz/../status.json', 'observed'],
    ['/x/../', 'observed'],
    ['/status.json/..', 'observed'],
    ['/admin/stats', 'admin'],
    ['/admin/gc', 'admin'],
    ['/admin/gc?dryRun=false', 'admin'],
    ['/admin/../admin/stats', 'admin'],
    ['/admin/%73tats', 'admin'],
    ['/admin//stats', 'admin'],
    ['/admin/stats/', 'admin'],
    ['/admin/x', 'admin'],
    ['/v2/../admin/stats', 'admin'],
    ['/admin/stats/../gc', 'admin'],
    ['/healthz', 'health'],
    ['/readyz', 'health'],
    ['/v2/../healthz', 'health'],
    ['/metrics/../readyz', 'health'],
    ['/METRICS', 'notfound'],
    ['/Metrics', 'notfound'],
    ['//metrics', 'notfound'],
    ['/metrics/', 'notfound'],
    ['/metrics%2f', 'notfound'],
    ['/status.json/', 'notfound'],
    ['/token/', 'notfound'],
    ['/TOKEN', 'notfound'],
    ['/token%2f', 'notfound'],
    ['/.well-known/openid-configuration', 'notfound'],
    ['/%2e%2e/%2e%2e/etc/passwd', 'notfound'],
    ['/..%2f..%2fetc%2fpasswd', 'notfound'],
    ['/static/../../../../etc/passwd', 'notfound'],
    ['/v2/_catalog', 'v2unknown'],
    ['/v2/..%2fmetrics', 'v2unknown'],
    ['/v2/ghcr.io/acme/b/manifests/v1/', 'v2unknown'],
    ['/v2/ghcr.io/acme/b/blobs/', 'v2unknown'],
    ['/v2/ghcr.io/acme/b/manifests/', 'v2unknown'],
    ['/v2/ghcr.io/acme/b', 'v2unknown'],
    ['/v2/ghcr.io/acme/b/tags/list/x', 'v2unknown'],
    ['/v2/ghcr.io/acme/b/blobs/uploads/', 'v2upload'],
    ['/v2/ghcr.io/acme/a/blobs/uploads/x?digest=sha256:00', 'v2upload'],
    ['/token', 'token'],
    ['/token?service=wharf&scope=repository:ghcr.io/acme/b:pull', 'token'],
    ['/v2/../token?scope=repository:ghcr.io/acme/b:pull', 'token'],
    ['/%74oken?scope=repository:ghcr.io/acme/b:*', 'token'],
    ['/admin/../token?scope=registry:catalog:*', 'token'],
    ['*', 'badtarget'],
    ['v2/', 'badtarget'],
    ['?x', 'badtarget'],
    ['/\\v2/', 'badtarget'],
  ];
}

const METHODS = ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'LOCK', 'PURGE', 'SEARCH', 'REPORT', 'M-SEARCH', 'CONNECT', 'get', 'G3T', 'FOO'];
const UNKNOWN_TO_NODE = new Set(['get', 'G3T', 'FOO']);

function traversalAllowed(cls: PathClass, method: string, cred: Credential): Outcome[] {
  const who = cred.who;
  // Node hands CONNECT to its 'connect' event, which wharf does not listen to: the socket is closed.
  if (method === 'CONNECT') return ['closed'];
  if (UNKNOWN_TO_NODE.has(method) || cls === 'badtarget') return [400];
  const read = method === 'GET' || method === 'HEAD';
  switch (cls) {
    case 'bpath':
      return [who === 'bad' ? 401 : read ? refusal(who) : 405];
    case 'observed':
    case 'admin':
      return [refusal(who)];
    case 'health':
      return [read ? 200 : 404];
    case 'notfound':
      return [404];
    case 'v2unknown':
      return [who === 'bad' ? 401 : read ? 404 : 405];
    case 'v2upload':
      return [who === 'bad' ? 401 : 405];
    case 'token':
      return [read ? tokenAnswer(cred) : 404];
  }
}

const healthCheck = (answer: { body: Buffer; status: number }) =>
  answer.body.length === 0 || /^\{"status":"(ok|ready|degraded)"/.test(answer.body.toString()) ? undefined : `health answer ${answer.body.toString().slice(0, 80)}`;

export function traversalCase(w: World, rand: Rand): Built {
  const [path, cls] = pick(rand, traversalPaths(w));
  const r = rand();
  const method = r < 0.4 ? 'GET' : r < 0.5 ? 'HEAD' : pick(rand, METHODS);
  const c = rand();
  const cred: Credential =
    c < 0.35 ? credential(w, 'none') : c < 0.6 ? credential(w, 'alice-basic') : c < 0.8 ? credential(w, 'alice-token') : c < 0.9 ? credential(w, 'ci') : { who: 'bad', label: 'alice, wrong password', headers: [['Authorization', basic('alice', `wrong-${int(rand, 1e9)}-pw`)]] };
  let target = path;
  if (cls !== 'badtarget' && path.startsWith('/') && chance(rand, 0.15)) target = `http://${pick(rand, [w.host, 'evil.example', 'ghcr.io'])}${path}`;
  let body: Buffer | undefined;
  if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && chance(rand, 0.5)) {
    body = Buffer.from(
      cls === 'token'
        ? `grant_type=password&service=wharf&client_id=x&username=bob&password=${encodeURIComponent(PASSWORDS.bob)}&scope=repository:ghcr.io/acme/b:pull`
        : JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [] }),
    );
  }
  const allowed = traversalAllowed(cls, method, cred);
  const { request, summary } = ask(w, rand, target, cred, { method, body });
  const check = cls === 'token' ? (method === 'HEAD' ? () => undefined : grantCheck(cred.who)) : cls === 'health' ? healthCheck : undefined;
  const withBody = body ? `${summary} + body ${short(body.toString(), 40)}` : summary;
  const secrets = body ? [PASSWORDS.bob] : [];
  return { variant: `${cls} ${short(method, 10)} ${short(path, 50)}`, next: single({ request, summary: withBody, allowed, check, secrets }) };
}
