// Azure Container Registry's AAD flow through a real wharf, against a stand-in of ACR's
// endpoints (test/support/standins/acr-auth.ts) in front of the stand-in registry of the other
// flows: an AAD access token from a file (`aad.accessTokenFile`) POSTed to /oauth2/exchange for
// a refresh token, that POSTed to /oauth2/token for an access token per scope; one exchange for
// several repositories while the refresh token lasts; a token file rotated by a sidecar picked
// up once the registry refuses the old token; a revoked identity: 403 DENIED after a bounded
// number of requests; the AAD token never sent to a realm on another host unless listed; and
// the config errors.
import { mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load-config.ts';
import { LogLines } from '../support/log-lines.ts';
import { startAcr, type RecordedRequest, type Standin } from '../support/registry-standins.ts';
import type { AcrAuth } from '../support/standins/acr-auth.ts';
import { makeImage, sha256, type TestImage } from '../support/test-images.ts';
import { startWharf, type TestWharf, type WharfOptions } from '../support/wharf.ts';

const ACCEPT = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');
const NAME = 'wharftest.azurecr.io';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const REPOS = ['team/app', 'team/worker'];
// Tokens of the same length, so that a rewrite can leave the file's stat as it was.
const AAD_1 = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.aad-one.${'a'.repeat(40)}`;
const AAD_2 = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.aad-two.${'b'.repeat(40)}`;
const AAD_3 = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.aad-new.${'c'.repeat(40)}`;

const img: TestImage = makeImage({ name: 'acr', files: { 'acr.txt': 'through the AAD flow\n' }, extraLayerBytes: 32 << 10 });

type Acr = Standin & { readonly acr: AcrAuth };

let dir: string;
const running: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-acr-'));
});
afterAll(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
  await rm(dir, { recursive: true, force: true });
});

async function acrStandin(options: Partial<Parameters<typeof startAcr>[0]> = {}): Promise<Acr> {
  const s = await startAcr({ repositories: REPOS, tag: 'v1', image: img, aadTokens: [AAD_1], tenant: TENANT, ...options });
  running.push(s);
  return s;
}

let files = 0;
/** The token file as a sidecar writes it (a trailing newline). */
async function tokenFile(token: string): Promise<string> {
  const file = join(dir, `aad-token-${files++}`);
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return file;
}

async function wharfFor(upstream: Partial<WharfOptions['upstreams'][number]> & { url: string }, logs?: LogLines): Promise<TestWharf> {
  const w = await startWharf({ upstreams: [{ name: NAME, ...upstream }], tagTtlSeconds: 0, ...(logs ? { logDestination: logs, logLevel: 'info' } : {}) });
  running.push(w);
  return w;
}

/** Pulls repository:v1 through wharf (host-in-path): the manifest, then every blob, each checked by digest. */
async function pull(wharf: TestWharf, repository: string): Promise<void> {
  const manifest = await fetch(`${wharf.url}/v2/${NAME}/${repository}/manifests/v1`, { headers: { accept: ACCEPT } });
  const body = Buffer.from(await manifest.arrayBuffer());
  expect(manifest.status, body.toString()).toBe(200);
  expect(sha256(body)).toBe(img.manifest.digest);
  for (const blob of [img.config, ...img.layers]) {
    const res = await fetch(`${wharf.url}/v2/${NAME}/${repository}/blobs/${blob.digest}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(res.status, bytes.toString().slice(0, 200)).toBe(200);
    expect(sha256(bytes)).toBe(blob.digest);
  }
}

async function manifestAnswer(wharf: TestWharf, repository: string): Promise<{ status: number; code: string | undefined }> {
  const res = await fetch(`${wharf.url}/v2/${NAME}/${repository}/manifests/v1`, { headers: { accept: ACCEPT } });
  const body = (await res.json().catch(() => ({}))) as { errors?: Array<{ code: string }> };
  return { status: res.status, code: body.errors?.[0]?.code };
}

/** Requests whose headers (Authorization included) carry this text anywhere. */
function carrying(requests: readonly RecordedRequest[], text: string): RecordedRequest[] {
  return requests.filter((r) => JSON.stringify(r.headers).includes(text) || r.url.includes(encodeURIComponent(text)) || r.url.includes(text));
}

const form = (f: URLSearchParams) => Object.fromEntries(f);

describe('ACR with an Azure AD identity (aad.accessTokenFile)', () => {
  it('exchanges the AAD token at /oauth2/exchange (service, tenant), then POSTs the refresh token to the realm; neither reaches the registry', async () => {
    const s = await acrStandin();
    const wharf = await wharfFor({ url: s.url, aad: { accessTokenFile: await tokenFile(AAD_1), tenant: TENANT } });
    await pull(wharf, 'team/app');

    const { acr } = s;
    expect(acr.exchanges.map((r) => [r.method, r.server])).toEqual([['POST', 'registry']]);
    expect(acr.exchangeForms.map(form)).toEqual([{ grant_type: 'access_token', service: s.registry.host, tenant: TENANT, access_token: AAD_1 }]);
    const [refreshToken] = acr.issuedRefreshTokens();
    expect(refreshToken!.split('.')).toHaveLength(3);
    expect(acr.tokenRequests.every((r) => r.method === 'POST' && r.headers.authorization === undefined)).toBe(true);
    expect(acr.tokenForms.map(form)).toEqual([{ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'wharf', service: s.registry.host, scope: 'repository:team/app:pull' }]);
    // The AAD token went in one form body only; no header or URL anywhere carried it or the refresh token.
    expect(carrying(s.requests, AAD_1)).toEqual([]);
    expect(carrying(s.requests, refreshToken!)).toEqual([]);
    expect(acr.tokenForms.some((f) => [...f.values()].includes(AAD_1))).toBe(false);
    const registryAuth = s.requests.filter((r) => !r.path.startsWith('/oauth2/') && r.headers.authorization !== undefined);
    expect(registryAuth.length).toBeGreaterThan(0);
    expect(registryAuth.every((r) => /^Bearer acr-access-/.test(r.headers.authorization!))).toBe(true);
  });

  it('reuses the refresh token for a second repository: one exchange, one token request per scope', async () => {
    const s = await acrStandin();
    const wharf = await wharfFor({ url: s.url, aad: { accessTokenFile: await tokenFile(AAD_1), tenant: TENANT } });
    await pull(wharf, 'team/app');
    await pull(wharf, 'team/worker');
    expect(s.acr.exchanges).toHaveLength(1);
    expect(s.acr.tokenForms.map((f) => f.get('scope'))).toEqual(['repository:team/app:pull', 'repository:team/worker:pull']);
    expect(new Set(s.acr.tokenForms.map((f) => f.get('refresh_token')))).toEqual(new Set(s.acr.issuedRefreshTokens()));
  });

  it('a refresh token whose JWT exp is near is exchanged again; an opaque one is kept; no tenant configured: none sent', async () => {
    // Expires within wharf's renewal margin: each new scope exchanges afresh.
    const short = await acrStandin({ tenant: undefined, refreshTokenLifetimeSeconds: 20 });
    const w1 = await wharfFor({ url: short.url, aad: { accessTokenFile: await tokenFile(AAD_1) } });
    await pull(w1, 'team/app');
    await pull(w1, 'team/worker');
    expect(short.acr.exchanges).toHaveLength(2);
    expect(short.acr.exchangeForms.every((f) => !f.has('tenant'))).toBe(true);

    const opaque = await acrStandin({ tenant: undefined, refreshTokenShape: 'opaque' });
    const w2 = await wharfFor({ url: opaque.url, aad: { accessTokenFile: await tokenFile(AAD_1) } });
    await pull(w2, 'team/app');
    await pull(w2, 'team/worker');
    expect(opaque.acr.exchanges).toHaveLength(1);
  });

  it('picks up a rotated token file once the registry refuses the old token: read again on change, and after a refusal even when its stat looks the same', async () => {
    const s = await acrStandin();
    const file = await tokenFile(AAD_1);
    // A whole second, so that the mtime can be put back exactly after the rewrite below.
    const mtime = 1_700_000_000;
    await utimes(file, mtime, mtime);
    const wharf = await wharfFor({ url: s.url, aad: { accessTokenFile: file, tenant: TENANT } });
    await pull(wharf, 'team/app');
    const { acr } = s;

    // The sidecar writes a new token; the registry takes only that one and its old tokens are gone.
    // The rewrite keeps the inode, the size and (put back) the mtime: only a refusal makes wharf look.
    const before = await stat(file);
    await writeFile(file, `${AAD_2}\n`);
    await utimes(file, mtime, mtime);
    const after = await stat(file);
    expect([after.ino, after.size, after.mtimeMs]).toEqual([before.ino, before.size, before.mtimeMs]);
    acr.aadTokens.clear();
    acr.aadTokens.add(AAD_2);
    acr.revokeTokens();
    let exchanges = acr.exchangeForms.length;
    let tokens = acr.tokenForms.length;
    await pull(wharf, 'team/app');
    // The held refresh token refused, an exchange with the old AAD token refused, the file read, the new one taken.
    expect(acr.exchangeForms.slice(exchanges).map((f) => f.get('access_token'))).toEqual([AAD_1, AAD_2]);
    expect(acr.tokenForms.length - tokens).toBe(2);

    // A plain rotation (a new mtime) is seen by the stat before anything is refused.
    await writeFile(file, `${AAD_3}\n`);
    acr.aadTokens.clear();
    acr.aadTokens.add(AAD_3);
    acr.revokeTokens();
    exchanges = acr.exchangeForms.length;
    tokens = acr.tokenForms.length;
    await pull(wharf, 'team/worker');
    expect(acr.exchangeForms.slice(exchanges).map((f) => f.get('access_token'))).toEqual([AAD_3]);
    expect(acr.tokenForms.length - tokens).toBe(2);
  });

  it('a revoked identity is 403 DENIED, after a bounded number of requests, on every try', async () => {
    const s = await acrStandin();
    const { acr } = s;
    // Never accepted: the exchange is refused, the file (unchanged) read again, no second exchange.
    const fresh = await wharfFor({ url: s.url, aad: { accessTokenFile: await tokenFile('aad-token-of-a-deleted-identity') } });
    for (let i = 0; i < 3; i++) {
      const exchanges = acr.exchanges.length;
      const before = s.requests.length;
      expect(await manifestAnswer(fresh, 'team/app')).toEqual({ status: 403, code: 'DENIED' });
      expect(acr.exchanges.length - exchanges).toBe(1);
      expect(s.requests.length - before).toBeLessThanOrEqual(3);
    }
    expect(acr.tokenRequests).toEqual([]);

    // Accepted once, then revoked with every token it bought: one refused refresh, one refused exchange per try.
    const wharf = await wharfFor({ url: s.url, aad: { accessTokenFile: await tokenFile(AAD_1), tenant: TENANT } });
    await pull(wharf, 'team/app');
    acr.aadTokens.clear();
    acr.revokeTokens();
    for (let i = 0; i < 3; i++) {
      const exchanges = acr.exchanges.length;
      const tokens = acr.tokenRequests.length;
      const before = s.requests.length;
      expect(await manifestAnswer(wharf, 'team/worker')).toEqual({ status: 403, code: 'DENIED' });
      expect(acr.exchanges.length - exchanges).toBeLessThanOrEqual(1);
      expect(acr.tokenRequests.length - tokens).toBeLessThanOrEqual(2);
      expect(s.requests.length - before).toBeLessThanOrEqual(5);
    }
  });

  it('never sends the AAD token to a realm on another host unless it is listed in authRealmHosts', async () => {
    const s = await acrStandin({ realmHost: 'other' });
    const auth = s.servers.auth!;
    const logs = new LogLines();
    const file = await tokenFile(AAD_1);
    const withheld = await wharfFor({ url: s.url, aad: { accessTokenFile: file, tenant: TENANT } }, logs);
    // An anonymous token request is all the other host gets; it refuses, the client hears "denied".
    expect(await manifestAnswer(withheld, 'team/app')).toEqual({ status: 403, code: 'DENIED' });
    expect(s.acr.exchanges).toEqual([]);
    expect(s.acr.tokenRequests.every((r) => r.method === 'GET' && r.headers.authorization === undefined)).toBe(true);
    expect(carrying(s.requests, AAD_1)).toEqual([]);
    await logs.waitFor((l) => JSON.stringify(l).includes('authRealmHosts'));

    const allowed = await wharfFor({ url: s.url, aad: { accessTokenFile: file, tenant: TENANT }, authRealmHosts: [auth.host] });
    await pull(allowed, 'team/app');
    expect(s.acr.exchanges.map((r) => [r.method, r.server])).toEqual([['POST', 'auth']]);
    expect(s.acr.exchangeForms.map((f) => f.get('access_token'))).toEqual([AAD_1]);
  });
});

describe('aad config errors', () => {
  async function problems(aad: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<readonly string[]> {
    const err = await startWharf({ upstreams: [{ name: NAME, url: 'https://wharftest.azurecr.io', aad, ...extra } as WharfOptions['upstreams'][number]] }).then(
      (w) => (running.push(w), undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }

  it('refuses aad beside other credentials, an unreadable or empty token file, and unknown keys', async () => {
    const file = await tokenFile(AAD_1);
    const both = 'set aad or username/password/passwordFile/credentialHelper, not both';
    expect(await problems({ accessTokenFile: file }, { username: '00000000-0000-0000-0000-000000000000', password: 'x' })).toEqual([expect.stringMatching(new RegExp(`upstreams\\.0\\.aad: ${both}$`))]);
    expect(await problems({ accessTokenFile: file }, { credentialHelper: { command: 'acr-env' } })).toEqual([expect.stringMatching(new RegExp(`upstreams\\.0\\.aad: ${both}$`))]);
    const missing = join(dir, 'no-such-token');
    expect(await problems({ accessTokenFile: missing })).toEqual([expect.stringMatching(new RegExp(`upstreams\\.0\\.aad\\.accessTokenFile: cannot read ${missing}: ENOENT$`))]);
    const empty = join(dir, 'empty-token');
    await writeFile(empty, '\n');
    expect(await problems({ accessTokenFile: empty })).toEqual([expect.stringMatching(/upstreams\.0\.aad\.accessTokenFile: .*empty-token is empty$/)]);
    expect(await problems({ accessTokenFile: file, tenantId: TENANT })).toEqual([expect.stringMatching(/upstreams\.0\.aad\.tenantId: unknown key$/)]);
    expect(await problems({ tenant: TENANT })).toEqual([expect.stringMatching(/upstreams\.0\.aad\.accessTokenFile: /)]);
  });
});
