// Dynamic upstream credentials through a real wharf against a token-realm stand-in, all on
// 127.0.0.1: a Docker credential helper run by the real exec protocol (a script named
// docker-credential-wharftest on PATH: `get`, the server URL on stdin, JSON on stdout), run
// again after lifetimeSeconds and after the realm rejects its answer; a passwordFile rotated on
// disk; an identity token (Username "<token>") exchanged by OAuth2 refresh_token POST; revoked
// credentials: one refresh and one retry, then 403 DENIED. And Debian's real helpers where
// installed (docker-credential-ecr-login, docker-credential-pass).
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startArtifactory, startGenericTokenRegistry, type Account, type Standin } from '../support/registry-standins.ts';
import { basicCredentials } from '../support/standins/recording-server.ts';
import { makeImage, sha256 } from '../support/test-images.ts';
import { startWharf, type TestWharf, type WharfOptions } from '../support/wharf.ts';

const ACCEPT = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');
const REPO = 'acme/app';
const img = makeImage({ name: 'dyn', files: { 'dyn.txt': 'dynamic credentials\n' } });

let binDir: string;
const savedPath = process.env.PATH;
const running: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  binDir = await mkdtemp(join(tmpdir(), 'wharf-cred-helpers-'));
  // The helper is found as docker clients find it: by name on PATH (wharf runs it with its env).
  process.env.PATH = `${binDir}:${savedPath}`;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
});
afterAll(async () => {
  process.env.PATH = savedPath;
  await Promise.all(running.splice(0).map((r) => r.stop()));
  await rm(binDir, { recursive: true, force: true });
});

interface Helper {
  readonly name: string;
  /** What it prints next (JSON), or a miss. */
  answer(out: { Username: string; Secret: string } | 'not found' | 'broken'): Promise<void>;
  /** Each run: its argv and what it read on stdin. */
  calls(): Promise<Array<{ args: string; stdin: string }>>;
}

/** docker-credential-<name> in binDir: logs each call, prints the answer file, exits as told. */
async function helper(name: string): Promise<Helper> {
  const state = join(binDir, `${name}.state`);
  await mkdir(state);
  const script = join(binDir, `docker-credential-${name}`);
  await writeFile(
    script,
    `#!/bin/sh\nin=$(cat)\nprintf '%s\\t%s\\n' "$*" "$in" >> '${state}/calls'\ncat '${state}/answer'\nexit "$(cat '${state}/exit')"\n`,
  );
  await chmod(script, 0o755);
  const h: Helper = {
    name,
    async answer(out) {
      if (out === 'not found') {
        await writeFile(join(state, 'answer'), 'credentials not found in native keychain\n');
        await writeFile(join(state, 'exit'), '1');
      } else if (out === 'broken') {
        await writeFile(join(state, 'answer'), 'error getting credentials - err: exit status 255, out: `no backend`\n');
        await writeFile(join(state, 'exit'), '255');
      } else {
        await writeFile(join(state, 'answer'), JSON.stringify({ ServerURL: 'ignored', ...out }));
        await writeFile(join(state, 'exit'), '0');
      }
    },
    async calls() {
      const text = await readFile(join(state, 'calls'), 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [args, stdin] = line.split('\t') as [string, string];
          return { args, stdin };
        });
    },
  };
  return h;
}

/** A registry whose realm (same origin) answers tokens that live 1 s: wharf caches none, so every pull asks the realm. */
async function registry(accounts: Account[], extra: { refreshTokens?: Record<string, string>; publicRepositories?: string[] } = {}): Promise<Standin> {
  const s = await startGenericTokenRegistry({ repository: REPO, tag: 'v1', image: img, realmHost: 'same', realmPath: '/token', service: 'dyn.test', accounts, publicRepositories: extra.publicRepositories ?? [] });
  // The stand-in's realm options are its own; these two are read on each request.
  Object.assign(s.realm!.options, { expiresInSeconds: 1, ...(extra.refreshTokens ? { refreshTokens: extra.refreshTokens } : {}) });
  running.push(s);
  return s;
}

async function wharfFor(upstream: WharfOptions['upstreams'][number]): Promise<TestWharf> {
  const w = await startWharf({ upstreams: [upstream], tagTtlSeconds: 0 });
  running.push(w);
  return w;
}

async function manifest(wharf: TestWharf): Promise<{ status: number; code: string | undefined }> {
  const res = await fetch(`${wharf.url}/v2/dyn.test/${REPO}/manifests/v1`, { headers: { accept: ACCEPT } });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status === 200) expect(sha256(body)).toBe(img.manifest.digest);
  const parsed = res.status === 200 ? {} : (JSON.parse(body.toString() || '{}') as { errors?: Array<{ code: string }> });
  return { status: res.status, code: parsed.errors?.[0]?.code };
}

/** The Basic passwords the realm was offered, in order ('-' for none). */
function offered(s: Standin, from = 0): string[] {
  return s.realm!.requests.slice(from).map((r) => basicCredentials(r.headers)?.password ?? '-');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('credential helper (the exec protocol, a helper on PATH)', () => {
  it('is run with `get` and the server URL on stdin, its answer used, and run again after lifetimeSeconds', async () => {
    const h = await helper('wharftest');
    await h.answer({ Username: 'robot', Secret: 'pw-1' });
    const reg = await registry([{ username: 'robot', password: 'pw-1' }]);
    const wharf = await wharfFor({ name: 'dyn.test', url: reg.url, credentialHelper: { command: 'wharftest', lifetimeSeconds: 1 } });

    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });
    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });
    expect(await h.calls()).toEqual([{ args: 'get', stdin: reg.registry.host }]);
    expect(offered(reg).filter((p) => p !== '-').every((p) => p === 'pw-1')).toBe(true);

    await sleep(1200);
    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });
    expect(await h.calls()).toHaveLength(2);
  });

  it('rotated credentials: the old answer rejected by the realm, the helper is run again at once and the pull succeeds', async () => {
    const h = await helper('rotating');
    await h.answer({ Username: 'robot', Secret: 'old' });
    const accounts: Account[] = [{ username: 'robot', password: 'old' }];
    const reg = await registry(accounts);
    const wharf = await wharfFor({ name: 'dyn.test', url: reg.url, credentialHelper: { command: join(binDir, 'docker-credential-rotating'), lifetimeSeconds: 3600 } });
    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });
    expect(await h.calls()).toHaveLength(1);

    accounts[0] = { username: 'robot', password: 'new' };
    await h.answer({ Username: 'robot', Secret: 'new' });
    const before = reg.realm!.requests.length;
    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });
    expect(await h.calls()).toHaveLength(2);
    // Old one refused, new one taken: nothing else.
    expect(offered(reg, before).filter((p) => p !== '-')).toEqual(['old', 'new']);
  });

  it('revoked credentials: exactly one re-run and one retry per pull, then 403 DENIED, token requests bounded', async () => {
    const h = await helper('revoked');
    await h.answer({ Username: 'robot', Secret: 'revoked' });
    const reg = await registry([{ username: 'robot', password: 'current' }]);
    const wharf = await wharfFor({ name: 'dyn.test', url: reg.url, credentialHelper: { command: 'revoked', lifetimeSeconds: 3600 } });

    expect(await manifest(wharf)).toEqual({ status: 403, code: 'DENIED' });
    expect(await h.calls()).toHaveLength(2);
    expect(offered(reg).filter((p) => p !== '-')).toEqual(['revoked', 'revoked']);

    const before = reg.realm!.requests.length;
    expect(await manifest(wharf)).toEqual({ status: 403, code: 'DENIED' });
    expect(await h.calls()).toHaveLength(3);
    expect(reg.realm!.requests.length - before).toBeLessThanOrEqual(2);
  });

  it('"credentials not found" (exit 1): anonymous; a public repository pulls, a private one is 403 DENIED', async () => {
    const h = await helper('missing');
    await h.answer('not found');
    const pub = await registry([], { publicRepositories: [REPO] });
    const w1 = await wharfFor({ name: 'dyn.test', url: pub.url, credentialHelper: { command: 'missing' } });
    expect(await manifest(w1)).toEqual({ status: 200, code: undefined });
    expect(pub.realm!.requests.every((r) => r.headers.authorization === undefined)).toBe(true);

    const priv = await registry([{ username: 'robot', password: 'x' }]);
    const w2 = await wharfFor({ name: 'dyn.test', url: priv.url, credentialHelper: { command: 'missing' } });
    expect(await manifest(w2)).toEqual({ status: 403, code: 'DENIED' });
    expect(priv.realm!.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it('a failing helper is an error for the client, not anonymous and not a loop', async () => {
    const h = await helper('broken');
    await h.answer('broken');
    const reg = await registry([{ username: 'robot', password: 'x' }], { publicRepositories: [REPO] });
    const wharf = await wharfFor({ name: 'dyn.test', url: reg.url, credentialHelper: { command: 'broken' } });
    const answer = await manifest(wharf);
    // The upstream's auth is out of order: 503 UNAVAILABLE, as for a token endpoint that fails.
    expect(answer).toEqual({ status: 503, code: 'UNAVAILABLE' });
    expect(await h.calls()).toHaveLength(1);
    expect(reg.realm!.requests.length).toBe(0);
  });
});

describe('credential helper for a Basic upstream (Artifactory\'s Basic realm)', () => {
  it('rotated: the old Basic rejected, the helper run again at once, one retry succeeds; revoked: one more try, then 403 DENIED', async () => {
    const h = await helper('basicrot');
    await h.answer({ Username: 'puller', Secret: 'old' });
    const accounts: Account[] = [{ username: 'puller', password: 'old' }];
    const reg = await startArtifactory({ shape: 'basic', repoKey: 'docker-remote', repository: REPO, tag: 'v1', image: img, accounts });
    running.push(reg);
    const wharf = await wharfFor({ name: 'dyn.test', url: reg.url, credentialHelper: { command: 'basicrot' } });
    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });
    expect(await h.calls()).toHaveLength(1);

    accounts[0] = { username: 'puller', password: 'new' };
    await h.answer({ Username: 'puller', Secret: 'new' });
    let before = reg.registry.requests.length;
    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });
    expect(await h.calls()).toHaveLength(2);
    const passwords = (from: number) => reg.registry.requests.slice(from).map((r) => basicCredentials(r.headers)?.password ?? '-');
    expect(passwords(before)).toEqual(['old', 'new']);

    accounts[0] = { username: 'puller', password: 'newer' };
    before = reg.registry.requests.length;
    expect(await manifest(wharf)).toEqual({ status: 403, code: 'DENIED' });
    expect(await h.calls()).toHaveLength(3);
    expect(passwords(before)).toEqual(['new']);
  });
});

describe('identity token (Username "<token>"): OAuth2 refresh_token grant', () => {
  it('POSTs grant_type=refresh_token with service, scope and client_id; the access_token pulls', async () => {
    const h = await helper('idtoken');
    await h.answer({ Username: '<token>', Secret: 'refresh-0123' });
    const reg = await registry([{ username: 'robot', password: 'unused' }], { refreshTokens: { 'refresh-0123': 'robot' } });
    const wharf = await wharfFor({ name: 'dyn.test', url: reg.url, credentialHelper: { command: 'idtoken' } });
    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });
    const realm = reg.realm!;
    expect(realm.requests.every((r) => r.method === 'POST' && r.headers.authorization === undefined)).toBe(true);
    const form = realm.forms[0]!;
    expect(Object.fromEntries(form)).toEqual({ grant_type: 'refresh_token', refresh_token: 'refresh-0123', client_id: 'wharf', service: 'dyn.test', scope: `repository:${REPO}:pull` });
    // The refresh token never reaches the registry itself.
    expect(reg.registry.requests.filter((r) => r.path !== '/token').every((r) => !JSON.stringify(r.headers).includes('refresh-0123'))).toBe(true);
  });

  it('a revoked identity token: one re-run, one retry, then 403 DENIED', async () => {
    const h = await helper('idrevoked');
    await h.answer({ Username: '<token>', Secret: 'refresh-gone' });
    const reg = await registry([{ username: 'robot', password: 'unused' }], { refreshTokens: {} });
    const wharf = await wharfFor({ name: 'dyn.test', url: reg.url, credentialHelper: { command: 'idrevoked' } });
    expect(await manifest(wharf)).toEqual({ status: 403, code: 'DENIED' });
    expect(await h.calls()).toHaveLength(2);
    expect(reg.realm!.forms).toHaveLength(2);
  });
});

describe('passwordFile', () => {
  it('rotated on disk while wharf runs: the next token request uses the new password, no restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-pwfile-'));
    running.push({ stop: () => rm(dir, { recursive: true, force: true }) });
    const file = join(dir, 'password');
    await writeFile(file, 'first-secret\n');
    const accounts: Account[] = [{ username: 'robot', password: 'first-secret' }];
    const reg = await registry(accounts);
    const wharf = await wharfFor({ name: 'dyn.test', url: reg.url, username: 'robot', passwordFile: file });
    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });

    accounts[0] = { username: 'robot', password: 'second-secret-rotated' };
    await writeFile(file, 'second-secret-rotated\n');
    const before = reg.realm!.requests.length;
    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });
    expect(offered(reg, before).filter((p) => p !== '-')).toEqual(['second-secret-rotated']);
  });
});

// Debian's real helpers (packages amazon-ecr-credential-helper, golang-docker-credential-helpers).
const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

describe('Debian credential helpers, the real binaries', () => {
  let metadata: string | undefined;
  beforeAll(() => {
    for (const bin of ['docker-credential-ecr-login', 'docker-credential-pass']) {
      if (!has(bin)) throw new Error(`${bin} is missing: apt-get install amazon-ecr-credential-helper golang-docker-credential-helpers (as .ci/run does)`);
    }
    // The helpers inherit wharf's environment: keep ecr-login from asking an instance metadata
    // address for credentials, so that it answers from what is here (nothing) at once.
    metadata = process.env.AWS_EC2_METADATA_DISABLED;
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
  });
  afterAll(() => {
    if (metadata === undefined) delete process.env.AWS_EC2_METADATA_DISABLED;
    else process.env.AWS_EC2_METADATA_DISABLED = metadata;
  });

  it('ecr-login without AWS credentials says "not found": wharf pulls anonymously, and a private repository is 403 DENIED', async () => {
    const pub = await registry([], { publicRepositories: [REPO] });
    const w1 = await wharfFor({ name: 'dyn.test', url: pub.url, credentialHelper: { command: 'ecr-login', serverUrl: '123456789012.dkr.ecr.us-east-1.amazonaws.com' } });
    expect(await manifest(w1)).toEqual({ status: 200, code: undefined });
    expect(pub.realm!.requests.every((r) => r.headers.authorization === undefined)).toBe(true);

    const priv = await registry([{ username: 'AWS', password: 'x' }]);
    const w2 = await wharfFor({ name: 'dyn.test', url: priv.url, credentialHelper: { command: 'ecr-login' } });
    expect(await manifest(w2)).toEqual({ status: 403, code: 'DENIED' });
  });

  it('pass with an empty store answers an empty pair: anonymous', async () => {
    const pub = await registry([], { publicRepositories: [REPO] });
    const wharf = await wharfFor({ name: 'dyn.test', url: pub.url, credentialHelper: { command: 'pass' } });
    expect(await manifest(wharf)).toEqual({ status: 200, code: undefined });
    expect(pub.realm!.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });
});
