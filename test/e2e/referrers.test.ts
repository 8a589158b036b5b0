// Referrers (OCI distribution 1.1) through wharf: one answer whether the upstream has the
// referrers API (registry 2.8 behind a front that implements it) or not (registry 2.8 alone,
// where wharf reads the sha256-<hex> tag and adds the manifests with that subject it holds).
// Cached, revalidated after cache.tagTtlSeconds, served stale with the upstream down, and
// filtered by artifactType by wharf itself, with OCI-Filters-Applied.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, type TestImage } from '../support/test-images.ts';
import { pushImage, pushManifest } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { startReferrersApiRegistry, type ReferrersApiRegistry } from '../support/referrers-api-registry.ts';
import { descriptorOf, makeReferrer, referrersTagIndex } from '../support/oci-artifacts.ts';

const SBOM = 'application/spdx+json';
const SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const TTL_SECONDS = 2;

const image = makeImage({ name: 'referred', files: { 'r.txt': 'referred to\n' } });
const sbom = makeReferrer({ artifactType: SBOM, layerType: SBOM, content: '{"spdxVersion":"SPDX-2.3"}', subject: image.manifest, annotations: { 'org.example.kind': 'sbom' } });
const signature = makeReferrer({ artifactType: SIG, layerType: 'application/vnd.dev.cosign.simplesigning.v1+json', content: '{"critical":{}}', subject: image.manifest });

interface Index {
  mediaType: string;
  manifests: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string>; size: number; mediaType: string }>;
}

async function referrers(base: string, repo: string, subject: string, artifactType?: string): Promise<{ res: Response; index: Index }> {
  const query = artifactType ? `?${new URLSearchParams({ artifactType })}` : '';
  const res = await fetch(`${base}/v2/${repo}/referrers/${subject}${query}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
  return { res, index: (await res.json()) as Index };
}

const digests = (index: Index) => index.manifests.map((d) => d.digest).sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pushArtifacts(url: string, repo: string, artifacts: readonly TestImage[]): Promise<void> {
  for (const a of artifacts) await pushImage(url, repo, a.manifest.digest, a);
}

describe.each([{ threads: 1 }, { threads: 2 }])('referrers through wharf (threads: $threads)', ({ threads }) => {
  let registry: UpstreamRegistry;
  let withApi: ReferrersApiRegistry;
  let hubProxy: FaultProxy;
  let apiProxy: FaultProxy;
  let wharf: TestWharf;

  beforeAll(async () => {
    registry = await startUpstreamRegistry();
    withApi = await startReferrersApiRegistry(registry.url);
    // Without the API: the subject, both referrers, and the tag schema's index listing the SBOM only.
    await pushImage(registry.url, 'library/referred', 'latest', image);
    await pushArtifacts(registry.url, 'library/referred', [sbom, signature]);
    await pushManifest(registry.url, 'library/referred', `sha256-${image.manifest.digest.slice('sha256:'.length)}`, referrersTagIndex([sbom]));
    // With the API: pushed through the front, which records the subjects.
    await pushImage(withApi.url, 'owner/app', 'latest', image);
    await pushArtifacts(withApi.url, 'owner/app', [sbom, signature]);
    hubProxy = await startFaultProxy(registry.url);
    apiProxy = await startFaultProxy(withApi.url);
    wharf = await startWharf({
      threads,
      tagTtlSeconds: TTL_SECONDS,
      resilience: { staleAfterMs: 500, breaker: { failureThreshold: 1000 } },
      upstreams: [
        { name: 'docker.io', url: hubProxy.url, default: true },
        { name: 'ghcr.io', url: apiProxy.url },
      ],
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await hubProxy?.stop();
    await apiProxy?.stop();
    await withApi?.stop();
    await registry?.stop();
  });

  describe('upstream with the referrers API', () => {
    it('answers its list, cached: asked once unfiltered, filtered by wharf with OCI-Filters-Applied', async () => {
      const before = withApi.referrersAsked.length;
      const all = await referrers(wharf.url, 'ghcr.io/owner/app', image.manifest.digest);
      expect(digests(all.index)).toEqual([sbom.manifest.digest, signature.manifest.digest].sort());
      expect(all.res.headers.get('oci-filters-applied')).toBeNull();
      expect(all.index.manifests.find((d) => d.digest === sbom.manifest.digest)).toEqual(descriptorOf(sbom));
      const filtered = await referrers(wharf.url, 'ghcr.io/owner/app', image.manifest.digest, SIG);
      expect(filtered.res.headers.get('oci-filters-applied')).toBe('artifactType');
      expect(filtered.res.headers.get('x-wharf-cache')).toBe('hit');
      expect(digests(filtered.index)).toEqual([signature.manifest.digest]);
      // One upstream question, without the filter: the record serves every artifactType.
      expect(withApi.referrersAsked.slice(before)).toEqual([`/v2/owner/app/referrers/${image.manifest.digest}`]);
      const head = await fetch(`${wharf.url}/v2/ghcr.io/owner/app/referrers/${image.manifest.digest}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(JSON.stringify(all.index)));
    });

    it('answers an empty index for a digest nothing refers to', async () => {
      const { index } = await referrers(wharf.url, 'ghcr.io/owner/app', `sha256:${'0'.repeat(64)}`);
      expect(index.manifests).toEqual([]);
    });

    it('is asked again after the TTL, and served stale while it answers 503', async () => {
      await sleep(TTL_SECONDS * 1000 + 100);
      const before = withApi.referrersAsked.length;
      const again = await referrers(wharf.url, 'ghcr.io/owner/app', image.manifest.digest);
      expect(again.res.headers.get('x-wharf-cache')).toBe('revalidated');
      expect(withApi.referrersAsked.length).toBe(before + 1);
      await sleep(TTL_SECONDS * 1000 + 100);
      apiProxy.failWith = 503;
      try {
        const stale = await referrers(wharf.url, 'ghcr.io/owner/app', image.manifest.digest, SBOM);
        expect(stale.res.headers.get('x-wharf-cache')).toBe('stale');
        expect(stale.res.headers.get('oci-filters-applied')).toBe('artifactType');
        expect(digests(stale.index)).toEqual([sbom.manifest.digest]);
        // Never asked before: no copy to stand in, an honest error.
        const unknown = await fetch(`${wharf.url}/v2/ghcr.io/owner/app/referrers/sha256:${'1'.repeat(64)}`);
        expect(unknown.status).toBeGreaterThanOrEqual(500);
      } finally {
        apiProxy.failWith = undefined;
      }
    });
  });

  describe('upstream without the referrers API (registry 2.8)', () => {
    it('answers from the sha256-<hex> tag, then adds the referrers wharf pulled, filtered by wharf', async () => {
      const fromTag = await referrers(wharf.url, 'library/referred', image.manifest.digest);
      expect(digests(fromTag.index)).toEqual([sbom.manifest.digest]);
      expect(fromTag.index.manifests[0]).toEqual(descriptorOf(sbom));
      const asked = hubProxy.requests.map((r) => r.path);
      expect(asked).toContain(`/v2/library/referred/referrers/${image.manifest.digest}`);
      expect(asked).toContain(`/v2/library/referred/manifests/sha256-${image.manifest.digest.slice('sha256:'.length)}`);
      // A client pulls the signature (not in the tag's index) through wharf by digest.
      const pulled = await fetch(`${wharf.url}/v2/library/referred/manifests/${signature.manifest.digest}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(pulled.status).toBe(200);
      expect(Buffer.from(await pulled.arrayBuffer()).equals(signature.manifest.body)).toBe(true);
      // Recorded in the background: wait for it to land.
      let both: Index | undefined;
      for (let i = 0; i < 50 && both?.manifests.length !== 2; i++) {
        both = (await referrers(wharf.url, 'library/referred', image.manifest.digest)).index;
        if (both.manifests.length !== 2) await sleep(50);
      }
      expect(digests(both!)).toEqual([sbom.manifest.digest, signature.manifest.digest].sort());
      expect(both!.manifests.find((d) => d.digest === signature.manifest.digest)).toEqual(descriptorOf(signature));
      const sigs = await referrers(wharf.url, 'library/referred', image.manifest.digest, SIG);
      expect(sigs.res.headers.get('oci-filters-applied')).toBe('artifactType');
      expect(digests(sigs.index)).toEqual([signature.manifest.digest]);
      const none = await referrers(wharf.url, 'library/referred', image.manifest.digest, 'application/vnd.example.none');
      expect(none.index.manifests).toEqual([]);
    });

    it('answers an empty index (not 404) for a digest with no tag and nothing held', async () => {
      const { index } = await referrers(wharf.url, 'library/referred', `sha256:${'2'.repeat(64)}`);
      expect(index.manifests).toEqual([]);
    });

    it('serves the same answer stale while the upstream answers 503', async () => {
      await sleep(TTL_SECONDS * 1000 + 100);
      hubProxy.failWith = 503;
      try {
        const stale = await referrers(wharf.url, 'library/referred', image.manifest.digest);
        expect(stale.res.headers.get('x-wharf-cache')).toBe('stale');
        expect(digests(stale.index)).toEqual([sbom.manifest.digest, signature.manifest.digest].sort());
      } finally {
        hubProxy.failWith = undefined;
      }
    });
  });

  it('rejects a malformed digest at the edge', async () => {
    const res = await fetch(`${wharf.url}/v2/library/referred/referrers/sha256:nothex`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('DIGEST_INVALID');
  });
});
