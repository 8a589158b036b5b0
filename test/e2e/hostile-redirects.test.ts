// Redirects and auth challenges from hosts the upstream points at: a CDN that names its own
// token realm must not get the upstream's credentials, its challenge must not stick to the
// upstream, and redirects may not lead wharf to addresses it should never dial.
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startHostileUpstream, type HostileUpstream } from '../support/hostile-upstream.ts';
import { sha256 } from '../support/test-images.ts';

const BASIC = `Basic ${Buffer.from('ci-user:ci-secret').toString('base64')}`;
const blob = Buffer.from('a layer served by the CDN\n'.repeat(100));
const blobDigest = sha256(blob);

describe('hostile redirects and challenges', () => {
  let upstream: HostileUpstream;
  let cdn: HostileUpstream;
  let evilRealm: HostileUpstream;
  let trap: Server;
  let trapConnections = 0;
  let wharf: TestWharf;

  const get = async (path: string) => {
    const res = await request(`${wharf.url}${path}`);
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  };
  const credentialsSeenBy = (server: HostileUpstream) => server.requests.filter((r) => r.authorization?.includes(BASIC.slice(6)) || r.authorization === BASIC);

  beforeAll(async () => {
    evilRealm = await startHostileUpstream((req) => (req.path.startsWith('/token') ? { status: 200, body: '{"token":"evil-token"}' } : undefined));
    cdn = await startHostileUpstream((req) => {
      if (!req.path.startsWith('/cdn/')) return undefined;
      // The CDN's challenge names a realm on another host ("localhost" is not the upstream's host).
      if (req.authorization !== 'Bearer evil-token') {
        return {
          status: 401,
          headers: { 'www-authenticate': `Bearer realm="http://localhost:${evilRealm.port}/token",service="cdn",scope="repository:r:pull"` },
        };
      }
      return { status: 200, body: blob, headers: { 'content-type': 'application/octet-stream' } };
    });
    trap = createServer((s) => {
      trapConnections++;
      s.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const trapPort = (trap.address() as AddressInfo).port;
    upstream = await startHostileUpstream((req) => {
      if (req.authorization !== BASIC) return { status: 401, headers: { 'www-authenticate': 'Basic realm="upstream"' } };
      if (req.path === '/v2/') return { status: 200, body: '{}' };
      if (req.path === `/v2/r/blobs/${blobDigest}`) return { status: 307, headers: { location: `http://localhost:${cdn.port}/cdn/blob` } };
      const m = /^\/v2\/r\/blobs\/sha256:([0-9a-f]{64})$/.exec(req.path);
      if (!m) return undefined;
      const redirects: Record<string, string> = {
        ['0'.repeat(64)]: `http://0.0.0.0:${trapPort}/blob`,
        ['1'.repeat(64)]: req.path, // a loop
        ['2'.repeat(64)]: 'ftp://127.0.0.1/blob',
        ['3'.repeat(64)]: 'file:///etc/passwd',
        ['4'.repeat(64)]: `http://user:pw@localhost:${cdn.port}/cdn/blob`,
        ['5'.repeat(64)]: `http://[::ffff:0.0.0.0]:${trapPort}/blob`,
      };
      const location = redirects[m[1]!];
      return location ? { status: 307, headers: { location } } : undefined;
    });
    wharf = await startWharf({ upstreams: [{ name: 'registry.test', url: upstream.url, default: true, username: 'ci-user', password: 'ci-secret' }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await Promise.all([upstream?.stop(), cdn?.stop(), evilRealm?.stop()]);
    await new Promise((r) => trap?.close(r));
  });

  it('never sends the upstream\'s credentials to a realm a CDN names, and keeps the CDN\'s challenge off the upstream', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await get(`/v2/r/blobs/${blobDigest}`);
      // The CDN's own challenge is answered for the CDN, anonymously: the pull still works.
      expect(res.status).toBe(200);
      expect(res.body.equals(blob)).toBe(true);
      await get('/v2/r/manifests/latest');
    }
    expect(evilRealm.requests.length).toBeGreaterThan(0);
    expect(credentialsSeenBy(evilRealm)).toEqual([]);
    expect(credentialsSeenBy(cdn)).toEqual([]);
    // The upstream keeps getting its own Basic credentials, never the CDN realm's token.
    expect(upstream.requests.some((r) => r.authorization === 'Bearer evil-token')).toBe(false);
    expect(upstream.requests.filter((r) => r.path === '/v2/r/manifests/latest').every((r) => r.authorization === BASIC || r.authorization === undefined)).toBe(true);
    expect(upstream.requests.filter((r) => r.path === '/v2/r/manifests/latest').some((r) => r.authorization === BASIC)).toBe(true);
  });

  it('refuses redirects to 0.0.0.0 (which reaches the local host) without dialling them', async () => {
    for (const d of ['0', '5']) {
      const res = await get(`/v2/r/blobs/sha256:${d.repeat(64)}`);
      expect(res.status).toBe(502);
      expect(res.headers['content-type']).toBe('application/json');
    }
    expect(trapConnections).toBe(0);
  });

  it('bounds a redirect loop and refuses non-http(s) targets and targets with credentials', async () => {
    const loopPath = `/v2/r/blobs/sha256:${'1'.repeat(64)}`;
    const before = upstream.requests.filter((r) => r.path === loopPath).length;
    expect((await get(loopPath)).status).toBe(502);
    const hops = upstream.requests.filter((r) => r.path === loopPath).length - before;
    expect(hops).toBeGreaterThan(0);
    expect(hops).toBeLessThanOrEqual(12); // 6 hops, each at most once more after a 401
    for (const d of ['2', '3', '4']) expect((await get(`/v2/r/blobs/sha256:${d.repeat(64)}`)).status).toBe(502);
    expect(credentialsSeenBy(cdn)).toEqual([]);
  });
});
