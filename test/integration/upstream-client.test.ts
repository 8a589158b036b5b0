// The upstream client against real HTTP servers on loopback that play the registry's and the
// auth server's parts, so each auth, redirect and timeout rule can be driven precisely.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamClient } from '../../src/proxy/upstream-client.ts';
import { UpstreamFailure } from '../../src/proxy/upstream-failure.ts';
import { UpstreamDeniedError } from '../../src/errors.ts';
import { freePort } from '../support/free-port.ts';
import { startRawHttpServer, type RawHandler, type RawHttpServer } from '../support/raw-http-server.ts';

interface Seen {
  path: string;
  authorization: string | undefined;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const servers: Server[] = [];
const clients: UpstreamClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: Handler): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function client(url: string, extra: { username?: string; password?: string; headersMs?: number } = {}): UpstreamClient {
  const c = new UpstreamClient({
    upstream: { name: 'test.io', url, username: extra.username, password: extra.password, redirectHosts: [], authRealmHosts: [] },
    timeouts: { connectMs: 1000, headersMs: extra.headersMs ?? 2000, bodyIdleMs: 2000, manifestTotalMs: 5000, blobMinBytesPerSecond: 0, blobRateWindowMs: 10000 },
  });
  clients.push(c);
  return c;
}

async function get(c: UpstreamClient, path: string, repository?: string) {
  const res = await c.request({ method: 'GET', path, repository });
  const body = await res.body.text();
  return { status: res.statusCode, body, authRejected: res.authRejected };
}

/** A token server issuing tok-<n>-<scope>; a registry accepting tokens for its own repos. */
async function tokenRegistry(options: { knownRepos: string[]; expiresIn?: number }) {
  let issued = 0;
  const revoked = new Set<string>();
  const auth = await serve((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    issued++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token: `tok-${issued}-${u.searchParams.get('scope')}`, expires_in: options.expiresIn ?? 300 }));
  });
  const registry = await serve((req, res) => {
    const repo = /^\/v2\/(.+)\/manifests\//.exec(req.url ?? '')?.[1] ?? '';
    const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
    const valid = token.endsWith(`repository:${repo}:pull`) && !revoked.has(token) && options.knownRepos.includes(repo);
    if (!valid) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', `Bearer realm="${auth.url}/token",service="test-registry",scope="repository:${repo}:pull"`);
      return res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    }
    res.end(`manifest of ${repo}`);
  });
  return { auth, registry, issued: () => issued, revoke: (t: string) => revoked.add(t) };
}

describe('UpstreamClient: Bearer token flow', () => {
  it('fetches one token per scope, reuses it, and authenticates up front once it knows the realm', async () => {
    const t = await tokenRegistry({ knownRepos: ['library/a', 'library/b'] });
    const c = client(t.registry.url);
    expect(await get(c, '/v2/library/a/manifests/1', 'library/a')).toMatchObject({ status: 200, body: 'manifest of library/a' });
    expect(await get(c, '/v2/library/a/manifests/2', 'library/a')).toMatchObject({ status: 200 });
    expect(t.issued()).toBe(1);
    expect(await get(c, '/v2/library/b/manifests/1', 'library/b')).toMatchObject({ status: 200 });
    expect(t.issued()).toBe(2);
    // One 401 for the very first request only: the realm learned there serves library/b too.
    expect(t.registry.seen.filter((s) => s.authorization === undefined)).toHaveLength(1);
    expect(t.auth.seen.map((s) => new URL(s.path, 'http://x').searchParams.get('service'))).toEqual(['test-registry', 'test-registry']);
  });

  it('shares one token fetch among concurrent requests', async () => {
    const t = await tokenRegistry({ knownRepos: ['library/a'] });
    const c = client(t.registry.url);
    await get(c, '/v2/library/a/manifests/0', 'library/a');
    const before = t.issued();
    const c2 = client(t.registry.url);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => get(c2, `/v2/library/a/manifests/${i}`, 'library/a')));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(t.issued() - before).toBe(1);
  });

  it('refreshes a rejected token once and succeeds', async () => {
    const t = await tokenRegistry({ knownRepos: ['library/a'] });
    const c = client(t.registry.url);
    await get(c, '/v2/library/a/manifests/1', 'library/a');
    t.revoke('tok-1-repository:library/a:pull');
    expect(await get(c, '/v2/library/a/manifests/2', 'library/a')).toMatchObject({ status: 200, authRejected: false });
    expect(t.issued()).toBe(2);
  });

  it('reports a 401 that survives a fresh token as authRejected, after exactly one retry', async () => {
    const t = await tokenRegistry({ knownRepos: [] });
    const c = client(t.registry.url);
    const r = await get(c, '/v2/library/nope/manifests/1', 'library/nope');
    expect(r).toMatchObject({ status: 401, authRejected: true });
    expect(t.registry.seen).toHaveLength(2);
  });

  it('sends configured credentials to the token endpoint as Basic', async () => {
    const t = await tokenRegistry({ knownRepos: ['library/a'] });
    const c = client(t.registry.url, { username: 'ci', password: 's3cret' });
    await get(c, '/v2/library/a/manifests/1', 'library/a');
    expect(t.auth.seen[0]?.authorization).toBe(`Basic ${Buffer.from('ci:s3cret').toString('base64')}`);
    // The registry itself never sees the password.
    expect(t.registry.seen.some((s) => s.authorization?.startsWith('Basic'))).toBe(false);
  });

  it('turns a token endpoint refusing our credentials into 403 DENIED', async () => {
    const auth = await serve((_req, res) => {
      res.statusCode = 401;
      res.end();
    });
    const registry = await serve((_req, res) => {
      res.statusCode = 401;
      res.setHeader('www-authenticate', `Bearer realm="${auth.url}/token",service="s"`);
      res.end();
    });
    const c = client(registry.url, { username: 'ci', password: 'wrong' });
    await expect(c.request({ method: 'GET', path: '/v2/a/manifests/1', repository: 'a' })).rejects.toBeInstanceOf(UpstreamDeniedError);
  });
});

describe('UpstreamClient: a realm outside the upstream\'s side', () => {
  it('gets no credentials, and is reported once, not once per request', async () => {
    const auth = await serve((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token: req.headers.authorization ? 'with-creds' : 'anonymous' }));
    });
    const elsewhere = auth.url.replace('127.0.0.1', 'localhost');
    const registry = await serve((req, res) => {
      if (req.headers.authorization === 'Bearer anonymous') return res.end('ok');
      res.statusCode = 401;
      res.setHeader('www-authenticate', `Bearer realm="${elsewhere}/token",service="s"`);
      res.end();
    });
    const withheld: string[] = [];
    const c = new UpstreamClient({
      upstream: { name: 'test.io', url: registry.url, username: 'ci', password: 'secret-pw', redirectHosts: [], authRealmHosts: [] },
      timeouts: { connectMs: 1000, headersMs: 2000, bodyIdleMs: 2000, manifestTotalMs: 5000, blobMinBytesPerSecond: 0, blobRateWindowMs: 10000 },
      onCredentialsWithheld: (realm, why) => withheld.push(`${realm} ${why}`),
    });
    clients.push(c);
    for (const repo of ['a', 'b', 'c']) expect(await get(c, `/v2/${repo}/manifests/1`, repo)).toMatchObject({ status: 200, body: 'ok' });
    expect(auth.seen.every((s) => s.authorization === undefined)).toBe(true);
    expect(withheld).toHaveLength(1);
    expect(withheld[0]).toContain(new URL(elsewhere).origin);
    expect(withheld[0]).toContain('authRealmHosts');
    expect(withheld[0]).not.toContain('secret-pw');
  });

  it('returns a 401 to the anonymous token as a denial: the withheld credentials were needed', async () => {
    const auth = await serve((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token: 'anonymous' }));
    });
    const elsewhere = auth.url.replace('127.0.0.1', 'localhost');
    const registry = await serve((_req, res) => {
      res.statusCode = 401;
      res.setHeader('www-authenticate', `Bearer realm="${elsewhere}/jwt/auth",service="container_registry"`);
      res.end();
    });
    const c = new UpstreamClient({
      upstream: { name: 'test.io', url: registry.url, username: 'gitlab-ci-token', password: 'job-token', redirectHosts: [], authRealmHosts: [] },
      timeouts: { connectMs: 1000, headersMs: 2000, bodyIdleMs: 2000, manifestTotalMs: 5000, blobMinBytesPerSecond: 0, blobRateWindowMs: 10000 },
    });
    clients.push(c);
    expect(await get(c, '/v2/g/p/manifests/1', 'g/p')).toMatchObject({ status: 401, authRejected: false });
    expect(auth.seen).toHaveLength(1);
    // Without credentials configured, the same 401 is the registry's "no such repository".
    expect(await get(client(registry.url), '/v2/g/p/manifests/1', 'g/p')).toMatchObject({ status: 401, authRejected: true });
  });
});

describe('UpstreamClient: Basic credentials', () => {
  const expected = `Basic ${Buffer.from('ci:pw').toString('base64')}`;
  const basicRegistry = () =>
    serve((req, res) => {
      if (req.headers.authorization === expected) return res.end('ok');
      res.statusCode = 401;
      res.setHeader('www-authenticate', 'Basic realm="Registry Realm"');
      res.end();
    });

  it('answers a Basic challenge with the configured credentials, then sends them up front', async () => {
    const r = await basicRegistry();
    const c = client(r.url, { username: 'ci', password: 'pw' });
    expect(await get(c, '/v2/', undefined)).toMatchObject({ status: 200, body: 'ok' });
    expect(await get(c, '/v2/x/manifests/1', 'x')).toMatchObject({ status: 200 });
    expect(r.seen.map((s) => s.authorization)).toEqual([undefined, expected, expected]);
  });

  it('returns the 401 as a denial (not "unknown repository") without credentials', async () => {
    const r = await basicRegistry();
    expect(await get(client(r.url), '/v2/x/manifests/1', 'x')).toMatchObject({ status: 401, authRejected: false });
    expect(r.seen).toHaveLength(1);
  });

  it('returns a 401 to wrong Basic credentials as a denial, not "unknown repository" (Artifactory Basic realm)', async () => {
    const r = await basicRegistry();
    const c = client(r.url, { username: 'ci', password: 'wrong' });
    expect(await get(c, '/v2/x/manifests/1', 'x')).toMatchObject({ status: 401, authRejected: false });
    expect(r.seen.map((s) => s.authorization)).toEqual([undefined, `Basic ${Buffer.from('ci:wrong').toString('base64')}`]);
  });
});

describe('UpstreamClient: redirects', () => {
  it('follows a redirect to another host without our Authorization, and keeps it on the same host', async () => {
    const cdn = await serve((_req, res) => res.end('blob bytes'));
    const r = await serve((req, res) => {
      if (req.headers.authorization !== 'Basic ' + Buffer.from('u:p').toString('base64')) {
        res.statusCode = 401;
        res.setHeader('www-authenticate', 'Basic realm="r"');
        return res.end();
      }
      res.statusCode = req.url === '/v2/a/blobs/first' ? 307 : 302;
      res.setHeader('location', req.url === '/v2/a/blobs/first' ? '/v2/a/blobs/second' : `${cdn.url}/storage/blob?sig=1`);
      res.end();
    });
    const c = client(r.url, { username: 'u', password: 'p' });
    expect(await get(c, '/v2/a/blobs/first', 'a')).toMatchObject({ status: 200, body: 'blob bytes' });
    expect(r.seen.map((s) => s.path)).toEqual(['/v2/a/blobs/first', '/v2/a/blobs/first', '/v2/a/blobs/second']);
    expect(r.seen[2]?.authorization).toMatch(/^Basic /);
    expect(cdn.seen).toEqual([{ path: '/storage/blob?sig=1', authorization: undefined }]);
  });

  it('gives up after a redirect loop with a 502-class protocol error', async () => {
    const r = await serve((req, res) => {
      res.statusCode = 302;
      res.setHeader('location', req.url ?? '/');
      res.end();
    });
    await expect(client(r.url).request({ method: 'GET', path: '/v2/a/blobs/x' })).rejects.toMatchObject({ status: 502 });
  });
});

describe('UpstreamClient: failures to answer', () => {
  it('classifies a refused connection', async () => {
    const port = await freePort();
    const err = await client(`http://127.0.0.1:${port}`).request({ method: 'GET', path: '/v2/' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamFailure);
    expect((err as UpstreamFailure).kind).toBe('refused');
  });

  it('gives up waiting for headers after the configured deadline', async () => {
    const silent = await serve(() => undefined); // accepts, never answers
    const started = Date.now();
    const err = await client(silent.url, { headersMs: 300 }).request({ method: 'GET', path: '/v2/' }).catch((e: unknown) => e);
    expect((err as UpstreamFailure).kind).toBe('headers-timeout');
    expect(Date.now() - started).toBeLessThan(1500);
    // Unanswered sockets keep the server from closing: drop them.
    servers.forEach((s) => s.closeAllConnections());
  });

  it('classifies a reset connection', async () => {
    const rude = await serve((req) => req.socket.destroy());
    const err = await client(rude.url).request({ method: 'GET', path: '/v2/' }).catch((e: unknown) => e);
    expect((err as UpstreamFailure).kind).toBe('reset');
  });
});

describe('UpstreamClient: retries on connections closed under it', () => {
  const raws: RawHttpServer[] = [];
  afterEach(async () => {
    await Promise.all(raws.splice(0).map((r) => r.stop()));
  });
  async function raw(handler: RawHandler): Promise<RawHttpServer> {
    const server = await startRawHttpServer(handler);
    raws.push(server);
    return server;
  }
  const ok = (body: string, extra = '') => Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`);

  it('asks once more when a connection is reset before any answer, and not again', async () => {
    let n = 0;
    const flaky = await raw(() => (n++ === 0 ? { parts: [], end: 'reset' } : { parts: [ok('fine')] }));
    expect(await get(client(flaky.url), '/v2/')).toMatchObject({ status: 200, body: 'fine' });
    expect(flaky.requests).toHaveLength(2);

    const dead = await raw(() => ({ parts: [], end: 'reset' }));
    const err = await client(dead.url).request({ method: 'GET', path: '/v2/' }).catch((e: unknown) => e);
    expect((err as UpstreamFailure).kind).toBe('reset');
    expect(dead.requests).toHaveLength(2);
  });

  it('resumes a body cut mid-way with a Range for the rest, and refuses a whole body as the rest', async () => {
    const body = 'abcdefghij'.repeat(100);
    const resumed = await raw((req) =>
      req.headers.range === undefined
        ? { parts: [Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 400)}`)], end: 'reset' }
        : { parts: [Buffer.from(`HTTP/1.1 206 Partial Content\r\ncontent-length: 600\r\ncontent-range: bytes 400-999/1000\r\n\r\n${body.slice(400)}`)] },
    );
    expect(await get(client(resumed.url), '/v2/x/blobs/sha256:a')).toMatchObject({ status: 200, body });
    expect(resumed.requests.map((r) => r.headers.range)).toEqual([undefined, 'bytes=400-999']);

    // A server that ignores the Range must not have its whole body appended to the first 400 bytes.
    const ignoring = await raw((req) => ({ parts: [ok(body).subarray(0, req.headers.range ? undefined : 460)], end: req.headers.range ? 'close' : 'reset' }));
    const res = await client(ignoring.url).request({ method: 'GET', path: '/v2/x/blobs/sha256:a' });
    await expect(res.body.text()).rejects.toThrow();
  });
});
