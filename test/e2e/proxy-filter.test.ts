// Which repositories may enter the cache at all (an upstream's `repositories` allow/deny globs),
// whoever asks: refused before the upstream is contacted, on manifests, blobs and tag lists, with
// or without auth; and the identity of each request in the access log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { LogLines } from '../support/log-lines.ts';

const image = makeImage({ name: 'filtered', files: { 'f.txt': 'approved\n' } });

describe.each([1, 2])('proxy filter (threads: %i)', (threads) => {
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  const logs = new LogLines();

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    for (const repo of ['library/approved', 'library/other', 'team/evil']) await pushImage(upstream.url, repo, 'v1', image);
    wharf = await startWharf({
      threads,
      logLevel: 'info',
      logDestination: logs,
      upstreams: [{ name: 'docker.io', url: upstream.url, default: true, repositories: { allow: ['library/approved', 'team/**'], deny: ['team/evil'] } }],
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  it('serves what it admits and refuses the rest with 403 before asking the upstream', async () => {
    const ok = await fetch(`${wharf.url}/v2/approved/manifests/v1`, { headers: { accept: image.manifest.mediaType } });
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
    await upstream.settleLog();
    const before = upstream.requestLog().length;
    for (const path of ['/v2/other/manifests/v1', `/v2/other/blobs/${image.config.digest}`, '/v2/other/tags/list', `/v2/other/referrers/${image.manifest.digest}`, '/v2/team/evil/manifests/v1', `/v2/team/evil/blobs/${image.config.digest}`]) {
      const res = await fetch(`${wharf.url}${path}`);
      expect(res.status, path).toBe(403);
      expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('DENIED');
    }
    await upstream.settleLog();
    expect(upstream.requestLog().slice(before)).toEqual([]);
    // Without auth nobody is authenticated: credentials meant for upstreams change nothing.
    const withHeader = await fetch(`${wharf.url}/v2/approved/manifests/v1`, { headers: { accept: image.manifest.mediaType, authorization: 'Basic Zm9vOmJhcg==' } });
    expect(withHeader.status).toBe(200);
    await withHeader.arrayBuffer();
    // No admin API without admin.token or auth: the filter does not bring one.
    expect((await fetch(`${wharf.url}/admin/stats`)).status).toBe(404);
    const line = await logs.waitFor((l) => l.msg === 'request' && l.url === '/v2/other/tags/list');
    expect(line).toMatchObject({ status: 403, identity: 'anonymous', client: '127.0.0.1' });
  });
});
