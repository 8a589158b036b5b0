// Who may pull what: wharf's token service and access rules, driven the way registry clients
// drive them (the Bearer challenge, GET /token with Basic, the token on every request), by hand
// with fetch, and by real skopeo and podman. The upstream is the real reference registry.
import { hash } from '@node-rs/bcrypt';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { Skopeo } from '../support/skopeo.ts';
import { Podman } from '../support/podman.ts';
import { until } from '../support/until.ts';

const imageA = makeImage({ name: 'acme-a', files: { 'a.txt': 'team a\n' } });
const imageB = makeImage({ name: 'acme-b', files: { 'b.txt': 'team b, private\n' }, extraLayerBytes: 32 << 10 });
const PASSWORDS = { alice: 'alice-pass-0123', bob: 'bob-pass-4567', carol: 'carol-pass-89ab' };

const basic = (user: keyof typeof PASSWORDS) => `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString('base64')}`;

/** The challenge's parameters. */
function challenge(res: Response): Record<string, string> {
  const header = res.headers.get('www-authenticate') ?? '';
  expect(header.startsWith('Bearer ')).toBe(true);
  return Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

describe.each([1, 2])('access control (threads: %i)', (threads) => {
  let upstream: UpstreamRegistry;
  let dir: TempDir;
  let wharf: TestWharf;
  let rulesFile: string;
  let htpasswd: string;

  const rules = (extra: object[] = []) =>
    stringify([
      ...extra,
      { repositories: ['ghcr.io/acme/a'], users: ['alice'], groups: ['ops'] },
      { repositories: ['ghcr.io/acme/b'], users: ['bob'] },
      { repositories: ['docker.io/library/**'], networks: ['10.0.0.0/8'] },
    ]);

  async function token(scope: string, authorization?: string): Promise<Response> {
    return fetch(`${wharf.url}/token?service=wharf&scope=${encodeURIComponent(scope)}`, { headers: authorization ? { authorization } : {} });
  }

  async function tokenFor(user: keyof typeof PASSWORDS, scope: string): Promise<string> {
    const res = await token(scope, basic(user));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; access_token: string; expires_in: number };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    return body.token;
  }

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'acme/a', 'v1', imageA);
    await pushImage(upstream.url, 'acme/b', 'v1', imageB);
    dir = await makeTempDir('wharf-auth-');
    htpasswd = join(dir.path, 'htpasswd');
    await writeFile(htpasswd, `alice:${await hash(PASSWORDS.alice, 5)}\nbob:${await hash(PASSWORDS.bob, 5)}\n`);
    rulesFile = join(dir.path, 'rules.yaml');
    await writeFile(rulesFile, rules());
    wharf = await startWharf({
      threads,
      upstreams: [
        { name: 'docker.io', url: upstream.url, default: true },
        { name: 'ghcr.io', url: upstream.url },
      ],
      auth: { htpasswd: { path: htpasswd, groups: { ops: ['carol'] } }, rulesFile, admins: { users: ['alice'] }, signingKeyFile: join(dir.path, 'key.pem') },
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('challenges a caller without credentials at /v2/ with the token realm', async () => {
    const res = await fetch(`${wharf.url}/v2/`);
    expect(res.status).toBe(401);
    expect(challenge(res)).toEqual({ realm: `${wharf.url}/token`, service: 'wharf' });
    expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('UNAUTHORIZED');
  });

  it('issues a token for what the rules grant, and serves exactly that with it', async () => {
    const manifest = await fetch(`${wharf.url}/v2/ghcr.io/acme/a/manifests/v1`, { headers: { accept: imageA.manifest.mediaType } });
    expect(manifest.status).toBe(401);
    expect(challenge(manifest)).toMatchObject({ scope: 'repository:ghcr.io/acme/a:pull' });
    await manifest.arrayBuffer();

    const bearer = `Bearer ${await tokenFor('alice', 'repository:ghcr.io/acme/a:pull')}`;
    const ok = await fetch(`${wharf.url}/v2/ghcr.io/acme/a/manifests/v1`, { headers: { accept: imageA.manifest.mediaType, authorization: bearer } });
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer()).equals(imageA.manifest.body)).toBe(true);
    const blob = await fetch(`${wharf.url}/v2/ghcr.io/acme/a/blobs/${imageA.layers[0]!.digest}`, { headers: { authorization: bearer } });
    expect(blob.status).toBe(200);
    await blob.arrayBuffer();
    // The same token again: answered (by the fast path, from memory) the same way.
    for (let i = 0; i < 3; i++) {
      const again = await fetch(`${wharf.url}/v2/ghcr.io/acme/a/manifests/v1`, { headers: { accept: imageA.manifest.mediaType, authorization: bearer } });
      expect(again.status).toBe(200);
      await again.arrayBuffer();
    }
    // alice's token says nothing of b, and the rules give b to bob only.
    const other = await fetch(`${wharf.url}/v2/ghcr.io/acme/b/manifests/v1`, { headers: { authorization: bearer } });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('DENIED');
  });

  it('names the registry in the challenge of a ?ns= request, so the token the client fetches for it serves it', async () => {
    // containerd's mirror form: the repository in the path, the registry in ?ns=.
    const path = `${wharf.url}/v2/acme/a/manifests/v1?ns=ghcr.io`;
    const first = await fetch(path, { headers: { accept: imageA.manifest.mediaType } });
    expect(first.status).toBe(401);
    const { scope } = challenge(first);
    expect(scope).toBe('repository:ghcr.io/acme/a:pull');
    await first.arrayBuffer();
    const bearer = `Bearer ${await tokenFor('alice', scope!)}`;
    const ok = await fetch(path, { headers: { accept: imageA.manifest.mediaType, authorization: bearer } });
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer()).equals(imageA.manifest.body)).toBe(true);
  });

  it('does not exchange a token for another at /token: a login needs the credentials', async () => {
    const bearer = `Bearer ${await tokenFor('alice', 'repository:ghcr.io/acme/a:pull')}`;
    const res = await token('repository:ghcr.io/acme/a:pull', bearer);
    expect(res.status).toBe(401);
    await res.arrayBuffer();
  });

  it('grants a scope the rules refuse as nothing (a partial grant is not an error)', async () => {
    const res = await token('repository:ghcr.io/acme/b:pull', basic('alice'));
    expect(res.status).toBe(200);
    const bearer = `Bearer ${((await res.json()) as { token: string }).token}`;
    const denied = await fetch(`${wharf.url}/v2/ghcr.io/acme/b/manifests/v1`, { headers: { authorization: bearer } });
    expect(denied.status).toBe(403);
    await denied.arrayBuffer();
  });

  it('gives alice nothing of b, not even a blob only b has asked for under a', async () => {
    // bob pulls b, so its layer is cached.
    const bobBearer = `Bearer ${await tokenFor('bob', 'repository:ghcr.io/acme/b:pull')}`;
    expect((await fetch(`${wharf.url}/v2/ghcr.io/acme/b/manifests/v1`, { headers: { authorization: bobBearer, accept: imageB.manifest.mediaType } })).status).toBe(200);
    const bLayer = imageB.layers[1]!.digest;
    const cached = await fetch(`${wharf.url}/v2/ghcr.io/acme/b/blobs/${bLayer}`, { headers: { authorization: bobBearer } });
    expect(cached.status).toBe(200);
    await cached.arrayBuffer();

    const aliceBearer = `Bearer ${await tokenFor('alice', 'repository:ghcr.io/acme/a:pull')}`;
    const asA = await fetch(`${wharf.url}/v2/ghcr.io/acme/a/blobs/${bLayer}`, { headers: { authorization: aliceBearer } });
    expect(asA.status).toBe(404);
    const body = Buffer.from(await asA.arrayBuffer());
    expect(body.includes(imageB.layers[1]!.body.subarray(0, 64))).toBe(false);
  });

  it('refuses a wrong password at /token and a tampered or foreign token on requests', async () => {
    const wrong = await token('repository:ghcr.io/acme/a:pull', `Basic ${Buffer.from('alice:nope').toString('base64')}`);
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain('nope');
    const good = await tokenFor('alice', 'repository:ghcr.io/acme/a:pull');
    const [h, p, sig] = good.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.access[0].name = 'ghcr.io/acme/b';
    const tampered = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    const res = await fetch(`${wharf.url}/v2/ghcr.io/acme/b/manifests/v1`, { headers: { authorization: `Bearer ${tampered}` } });
    expect(res.status).toBe(401);
    expect(challenge(res)).toMatchObject({ error: 'invalid_token' });
    await res.arrayBuffer();
  });

  it('lets skopeo (--creds) and podman (login) pull what the user may, and nothing else', async () => {
    const skopeo = await Skopeo.create();
    try {
      const pulled = await skopeo.copy(`docker://${wharf.host}/ghcr.io/acme/a:v1`, { creds: `alice:${PASSWORDS.alice}` });
      expect(pulled.index.manifests).toHaveLength(1);
      await expect(skopeo.copy(`docker://${wharf.host}/ghcr.io/acme/b:v1`, { creds: `alice:${PASSWORDS.alice}` })).rejects.toThrow(/denied|unauthorized/i);
      await expect(skopeo.copy(`docker://${wharf.host}/ghcr.io/acme/a:v1`, { creds: 'alice:wrong' })).rejects.toThrow(/unauthorized|authentication/i);
    } finally {
      await skopeo.cleanup();
    }
    const podman = await Podman.create(`[[registry]]\nlocation = "${wharf.host}"\ninsecure = true\n`);
    try {
      await podman.login(wharf.host, 'bob', PASSWORDS.bob);
      expect(await podman.pull(`${wharf.host}/ghcr.io/acme/b:v1`)).toBe(imageB.manifest.digest);
      await expect(podman.pull(`${wharf.host}/ghcr.io/acme/a:v1`)).rejects.toThrow();
    } finally {
      await podman.cleanup();
    }
  });

  it('takes changed rules and users without a restart, and keeps the old ones when a new file is bad', async () => {
    const asCarol = () => fetch(`${wharf.url}/v2/ghcr.io/acme/a/manifests/v1`, { headers: { authorization: basic('carol'), accept: imageA.manifest.mediaType } });
    expect((await asCarol()).status).toBe(401);
    // carol is in group ops, which the rules already let pull a: adding her user is enough.
    await writeFile(htpasswd, `alice:${await hash(PASSWORDS.alice, 5)}\nbob:${await hash(PASSWORDS.bob, 5)}\ncarol:${await hash(PASSWORDS.carol, 5)}\n`);
    await until(async () => (await asCarol()).status === 200, 'carol to be let in');

    // bob gets a as well, by a new first rule.
    const asBob = () => fetch(`${wharf.url}/v2/ghcr.io/acme/a/manifests/v1`, { headers: { authorization: basic('bob'), accept: imageA.manifest.mediaType } });
    expect((await asBob()).status).toBe(403);
    await writeFile(rulesFile, rules([{ repositories: ['ghcr.io/acme/a'], users: ['alice', 'bob'] }]));
    await until(async () => (await asBob()).status === 200, 'the new rule to let bob in');

    // A broken file changes nothing.
    await writeFile(rulesFile, '- repositories: [ "ghcr.io/[bad" ]\n');
    await new Promise((r) => setTimeout(r, 400));
    expect((await asBob()).status).toBe(200);
    await writeFile(rulesFile, rules());
    await until(async () => (await asBob()).status === 403, 'the old rules to be back');
  });

  it('keeps the operator endpoints for admins, /healthz and /readyz open, and counts outcomes without names', async () => {
    for (const path of ['/metrics', '/status.json', '/']) {
      const anonymous = await fetch(`${wharf.url}${path}`);
      expect(anonymous.status, path).toBe(401);
      await anonymous.arrayBuffer();
      const bob = await fetch(`${wharf.url}${path}`, { headers: { authorization: basic('bob') } });
      expect(bob.status, path).toBe(403);
      await bob.arrayBuffer();
      const alice = await fetch(`${wharf.url}${path}`, { headers: { authorization: basic('alice') } });
      expect(alice.status, path).toBe(200);
      await alice.arrayBuffer();
    }
    for (const path of ['/healthz', '/readyz']) expect((await fetch(`${wharf.url}${path}`)).status).toBe(200);
    const metrics = await (await fetch(`${wharf.url}/metrics`, { headers: { authorization: basic('alice') } })).text();
    const lines = metrics.split('\n').filter((l) => l.startsWith('wharf_auth_total{'));
    expect(lines.some((l) => l.includes('result="ok"') && l.includes('kind="user"'))).toBe(true);
    expect(lines.some((l) => l.includes('result="denied"'))).toBe(true);
    expect(lines.some((l) => l.includes('result="bad-credentials"'))).toBe(true);
    for (const secret of ['alice', 'bob', 'carol', ...Object.values(PASSWORDS)]) expect(metrics).not.toContain(secret);
  });
});

describe('a node mirror on a trusted network', () => {
  let upstream: UpstreamRegistry;
  let dir: TempDir;
  let wharf: TestWharf;
  const image = makeImage({ name: 'mirror-net', files: { 'm.txt': 'for nodes\n' } });

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/base', 'v1', image);
    await pushImage(upstream.url, 'acme/private', 'v1', image);
    dir = await makeTempDir('wharf-auth-net-');
    wharf = await startWharf({
      upstreams: [
        { name: 'docker.io', url: upstream.url, default: true },
        { name: 'ghcr.io', url: upstream.url },
      ],
      auth: { rules: [{ repositories: ['docker.io/**'], networks: ['127.0.0.0/8'] }, { repositories: ['**'], users: ['nobody-here'] }], signingKeyFile: join(dir.path, 'key.pem') },
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('challenges the ping as everyone, pulls without credentials, and challenges for what the network is not given', async () => {
    // Challenged like any caller without credentials: a login on this network must still be checked.
    const ping = await fetch(`${wharf.url}/v2/`);
    expect(ping.status).toBe(401);
    await ping.arrayBuffer();
    // The token dance without credentials gives the network's grant.
    const anonymous = await fetch(`${wharf.url}/token?service=wharf&scope=repository:library/base:pull`);
    expect(anonymous.status).toBe(200);
    const bearer = `Bearer ${((await anonymous.json()) as { token: string }).token}`;
    const withToken = await fetch(`${wharf.url}/v2/library/base/manifests/v1`, { headers: { authorization: bearer, accept: image.manifest.mediaType } });
    expect(withToken.status).toBe(200);
    await withToken.arrayBuffer();
    const m = await fetch(`${wharf.url}/v2/library/base/manifests/v1`, { headers: { accept: image.manifest.mediaType } });
    expect(m.status).toBe(200);
    await m.arrayBuffer();
    // containerd's mirror form (?ns=) reaches the same rule.
    const ns = await fetch(`${wharf.url}/v2/library/base/manifests/v1?ns=docker.io`, { headers: { accept: image.manifest.mediaType } });
    expect(ns.status).toBe(200);
    await ns.arrayBuffer();
    const other = await fetch(`${wharf.url}/v2/library/base/manifests/v1?ns=ghcr.io`);
    expect(other.status).toBe(401);
    await other.arrayBuffer();
    const priv = await fetch(`${wharf.url}/v2/ghcr.io/acme/private/manifests/v1`);
    expect(priv.status).toBe(401);
    expect(challenge(priv)).toMatchObject({ scope: 'repository:ghcr.io/acme/private:pull' });
    await priv.arrayBuffer();
  });
});

describe('auth config', () => {
  it('is refused with a clear error when the rules file is bad, naming the file and the rule', async () => {
    const dir = await makeTempDir('wharf-auth-bad-');
    try {
      const rulesFile = join(dir.path, 'rules.yaml');
      await writeFile(rulesFile, stringify([{ repositories: ['docker.io/**'], users: [''] }]));
      await expect(startWharf({ upstreams: [{ name: 'docker.io', url: 'http://127.0.0.1:9', default: true }], auth: { rulesFile, signingKeyFile: join(dir.path, 'k.pem') } })).rejects.toThrow(
        /rules\.yaml: rule 0/,
      );
    } finally {
      await dir.cleanup();
    }
  });
});
