// The OCI distribution-spec conformance suite's referrers specs (v1.1.1,
// conformance/03_discovery_test.go, "References setup" and "listing references"), ported spec
// for spec with the suite's own artifacts, run through wharf in front of registry 2.8, which has
// no referrers API, and in front of a registry that has it.
//
// Why a port: the suite is a Go program (ginkgo v2, gomega, reggie), none of its modules is
// packaged in Debian 12 and CI has no Go module source; its current version needs Go 1.24, Debian's
// is 1.19. The Go suite v1.1.1 itself was built once from fetched sources outside the repo and
// passed through the same arrangement (docs/conformance.md); this port keeps its referrers specs
// in `npm test`.
//
// The suite pushes and then reads through one root URL. wharf is a pull-through cache and takes
// no pushes, so, as in the run of the Go suite itself (docs/conformance.md), the push-split proxy
// sends writes to the upstream and reads to wharf. A registry without the API answers a push with
// a subject without OCI-Subject; the spec then asks the client to keep the referrers tag
// (sha256-<hex>) itself, which the proxy does in that case, as oras and regclient do, answering
// with OCI-Subject: the setup asserts it as the suite does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, sha256, type TestImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startReferrersApiRegistry, type ReferrersApiRegistry } from '../support/referrers-api-registry.ts';
import { startPushSplitProxy, type PushSplitProxy } from '../support/push-split-proxy.ts';
import { OCI_INDEX, OCI_MANIFEST } from '../support/oci-artifacts.ts';

const REPO = 'conformance/referrers';
const testRefArtifactTypeA = 'application/vnd.nhl.peanut.butter.bagel';
const testRefArtifactTypeB = 'application/vnd.nba.strawberry.jam.croissant';
const testRefArtifactTypeIndex = 'application/vnd.food.stand';
const testAnnotationKey = 'org.opencontainers.conformance.test';
const testRefBlobA = Buffer.from('NHL Peanut Butter on my NHL bagel');
const testRefBlobB = Buffer.from('NBA Strawberry Jam on my NBA croissant');
const emptyJSONBlob = Buffer.from('{}');
const emptyJSONDescriptor = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(emptyJSONBlob), size: emptyJSONBlob.length };
const dummyDigest = sha256(Buffer.from('hello world'));

// manifests[4] is pushed; manifests[3] never is (a referrer's subject may be missing).
const manifest4 = makeImage({ name: 'conformance-4', files: { 'four.txt': 'four\n' } });
const manifest3 = makeImage({ name: 'conformance-3', files: { 'three.txt': 'three\n' } });
const subjectOf = (m: TestImage) => ({ mediaType: OCI_MANIFEST, size: m.manifest.body.length, digest: m.manifest.digest });
const desc = (mediaType: string, body: Buffer) => ({ mediaType, size: body.length, digest: sha256(body) });

interface Pushed {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
  readonly annotation: string | undefined;
}

function marshal(mediaType: string, value: object, annotation?: string): Pushed {
  // Go's json.MarshalIndent(v, "", "\t"), as the suite writes them.
  const body = Buffer.from(JSON.stringify(value, null, '\t'));
  return { digest: sha256(body), mediaType, body, annotation };
}

const refsManifestAConfigArtifact = marshal(
  OCI_MANIFEST,
  {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: desc(testRefArtifactTypeA, testRefBlobA),
    subject: subjectOf(manifest4),
    layers: [emptyJSONDescriptor],
    annotations: { [testAnnotationKey]: 'test config a' },
  },
  'test config a',
);
const refsManifestBConfigArtifact = marshal(
  OCI_MANIFEST,
  {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: desc(testRefArtifactTypeB, testRefBlobB),
    subject: subjectOf(manifest4),
    layers: [emptyJSONDescriptor],
    annotations: { [testAnnotationKey]: 'test config b' },
  },
  'test config b',
);
const refsManifestALayerArtifact = marshal(
  OCI_MANIFEST,
  {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: testRefArtifactTypeA,
    config: emptyJSONDescriptor,
    subject: subjectOf(manifest4),
    layers: [desc(testRefArtifactTypeA, testRefBlobA)],
    annotations: { [testAnnotationKey]: 'test layer a' },
  },
  'test layer a',
);
const refsManifestBLayerArtifact = marshal(
  OCI_MANIFEST,
  {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: testRefArtifactTypeB,
    config: emptyJSONDescriptor,
    subject: subjectOf(manifest4),
    layers: [desc(testRefArtifactTypeB, testRefBlobB)],
    annotations: { [testAnnotationKey]: 'test layer b' },
  },
  'test layer b',
);
const refsManifestCLayerArtifact = marshal(OCI_MANIFEST, {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  artifactType: testRefArtifactTypeB,
  config: emptyJSONDescriptor,
  subject: subjectOf(manifest3),
  layers: [desc(testRefArtifactTypeB, testRefBlobB)],
});
const refsIndexArtifact = marshal(
  OCI_INDEX,
  {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    artifactType: testRefArtifactTypeIndex,
    manifests: [
      { mediaType: OCI_MANIFEST, size: refsManifestAConfigArtifact.body.length, digest: refsManifestAConfigArtifact.digest },
      { mediaType: OCI_MANIFEST, size: refsManifestALayerArtifact.body.length, digest: refsManifestALayerArtifact.digest },
    ],
    subject: subjectOf(manifest4),
    annotations: { [testAnnotationKey]: 'test index' },
  },
  'test index',
);
const testAnnotationValues = new Map(
  [refsManifestAConfigArtifact, refsManifestBConfigArtifact, refsManifestALayerArtifact, refsManifestBLayerArtifact, refsIndexArtifact].map((p) => [p.digest, p.annotation]),
);

/** What the suite's setup does. */
class ConformanceSetup {
  readonly ociSubjects: Array<string | null> = [];
  readonly registry: string;
  constructor(registry: string) {
    this.registry = registry;
  }

  async blob(body: Buffer): Promise<void> {
    const start = await fetch(`${this.registry}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location')!, this.registry);
    location.searchParams.set('digest', sha256(body));
    const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body });
    expect(put.status).toBeGreaterThanOrEqual(200);
    expect(put.status).toBeLessThan(300);
  }

  async manifest(p: Pushed, subject?: string): Promise<void> {
    const res = await fetch(`${this.registry}/v2/${REPO}/manifests/${p.digest}`, { method: 'PUT', headers: { 'content-type': p.mediaType }, body: p.body });
    expect(res.status).toBeGreaterThanOrEqual(200);
    expect(res.status).toBeLessThan(300);
    if (subject) this.ociSubjects.push(res.headers.get('oci-subject'));
  }
}

interface Index {
  manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
}

describe.each([{ upstream: 'registry 2.8 (no referrers API)', api: false }, { upstream: 'a registry with the referrers API', api: true }])(
  'conformance referrers specs through wharf in front of $upstream',
  ({ api }) => {
    let registry: UpstreamRegistry;
    let front: ReferrersApiRegistry | undefined;
    let wharf: TestWharf;
    let proxy: PushSplitProxy;
    let setup: ConformanceSetup;

    beforeAll(async () => {
      registry = await startUpstreamRegistry();
      front = api ? await startReferrersApiRegistry(registry.url) : undefined;
      const upstreamUrl = front?.url ?? registry.url;
      wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstreamUrl, default: true }] });
      proxy = await startPushSplitProxy({ upstreamUrl, wharfUrl: wharf.url, referrersTagFallback: true });
      setup = new ConformanceSetup(proxy.url);
    });

    afterAll(async () => {
      await proxy?.stop();
      await wharf?.stop();
      await front?.stop();
      await registry?.stop();
    });

    const get = async (digest: string, artifactType?: string) => {
      const query = artifactType ? `?${new URLSearchParams({ artifactType })}` : '';
      const res = await fetch(`${proxy.url}/v2/${REPO}/referrers/${digest}${query}`);
      return { res, index: res.status === 200 ? ((await res.json()) as Index) : undefined };
    };

    it('References setup', async () => {
      expect(emptyJSONDescriptor.digest).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
      await setup.blob(emptyJSONBlob);
      await setup.blob(testRefBlobA); // before the image manifest is pushed
      await setup.manifest(refsManifestAConfigArtifact, manifest4.manifest.digest);
      await setup.manifest(refsManifestALayerArtifact, manifest4.manifest.digest);
      await setup.manifest(refsIndexArtifact, manifest4.manifest.digest);
      await pushImage(setup.registry, REPO, 'tagtest0', manifest4);
      await setup.blob(testRefBlobB); // after
      await setup.manifest(refsManifestBConfigArtifact, manifest4.manifest.digest);
      await setup.manifest(refsManifestBLayerArtifact, manifest4.manifest.digest);
      await setup.manifest(refsManifestCLayerArtifact, manifest3.manifest.digest);
      // The suite's `Expect(resp.Header().Get("OCI-Subject"))`: met by the API; on 2.8, which
      // answers without it, by the proxy once it has added the referrer to the tag schema.
      expect(setup.ociSubjects).toEqual([...Array(5).fill(manifest4.manifest.digest), manifest3.manifest.digest]);
      const tag = (m: TestImage) => `${REPO}:sha256-${m.manifest.digest.slice('sha256:'.length)}`;
      if (api) expect(proxy.fallbackTags).toEqual([]);
      else expect(proxy.fallbackTags).toEqual([...Array(5).fill(tag(manifest4)), tag(manifest3)]);
    });

    it('GET request to nonexistent blob should result in empty 200 response', async () => {
      const { res, index } = await get(dummyDigest);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
      expect(index!.manifests.length).toBe(0);
    });

    it('GET request to existing blob should yield 200', async () => {
      const { res, index } = await get(manifest4.manifest.digest);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
      expect(index!.manifests.length).toBe(5);
      expect(index!.manifests[0]!.digest).not.toBe(index!.manifests[1]!.digest);
      for (const m of index!.manifests) {
        expect(Object.keys(m.annotations ?? {}).length).toBe(1);
        expect(m.annotations![testAnnotationKey]).toBe(testAnnotationValues.get(m.digest));
      }
    });

    it('GET request to existing blob with filter should yield 200', async () => {
      const { res, index } = await get(manifest4.manifest.digest, testRefArtifactTypeA);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
      // The suite accepts an unfiltered answer without the header (with a warning); wharf filters.
      expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
      expect(index!.manifests.length).toBe(2);
      for (const m of index!.manifests) {
        expect(Object.keys(m.annotations ?? {}).length).toBe(1);
        expect(m.annotations![testAnnotationKey]).toBe(testAnnotationValues.get(m.digest));
      }
    });

    it('GET request to missing manifest should yield 200', async () => {
      const { res, index } = await get(manifest3.manifest.digest);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
      expect(index!.manifests.length).toBe(1);
      expect(index!.manifests[0]!.digest).toBe(refsManifestCLayerArtifact.digest);
    });
  },
);
