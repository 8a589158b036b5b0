// A Docker-Hub-style upstream: anonymous Bearer tokens from a token server, per-scope caching.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { Skopeo } from '../support/skopeo.ts';

type Upstream = Awaited<ReturnType<typeof startUpstreamRegistry>>;

describe('pull through wharf from a token-auth upstream', () => {
  const image = makeImage({ name: 'tok', files: { 't.txt': 'token auth\n' }, extraLayerBytes: 512 << 10 });
  let upstream: Upstream;
  let wharf: TestWharf;
  let skopeo: Skopeo;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry({ auth: 'token' });
    await pushImage(upstream.url, 'library/tok', 'latest', image);
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], tagTtlSeconds: 0 });
    skopeo = await Skopeo.create();
  });
  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await skopeo?.cleanup();
  });

  it('pulls with skopeo, reusing one token for the repository scope', async () => {
    const before = upstream.tokenServer!.tokensIssued();
    const { index } = await skopeo.copy(`docker://${wharf.host}/library/tok:latest`);
    expect(index.manifests[0]?.digest).toBe(image.manifest.digest);
    const again = await skopeo.copy(`docker://${wharf.host}/tok:latest`);
    expect(again.index.manifests[0]?.digest).toBe(image.manifest.digest);
    // One token for repository:library/tok:pull serves every request of both pulls.
    expect(upstream.tokenServer!.tokensIssued() - before).toBe(1);
  });

  it('answers 404 MANIFEST_UNKNOWN for an unknown repository behind token auth', async () => {
    const res = await fetch(`${wharf.url}/v2/library/doesnotexist/manifests/latest`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { errors: Array<{ code: string }> };
    expect(body.errors[0]?.code).toBe('MANIFEST_UNKNOWN');
  });
});
