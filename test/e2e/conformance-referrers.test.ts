// The OCI distribution-spec conformance suite's referrers specs (v1.1.1,
// conformance/03_discovery_test.go, "References setup" and "listing references"), ported spec
// for spec with the suite's own artifacts, run through wharf in front of registry 2.8, which has
// no referrers API, and in front of a registry that has it.
//
// Why a port: the suite is a Go program (ginkgo v2, gomega, reggie) and none of its modules is
// packaged in Debian 12, nor can they be fetched here; Debian's Go is 1.19 and the suite's
// current version needs 1.24.
//
// The suite pushes (wharf is a pull-through cache and takes no pushes, so the pushes go to the
// upstream) and then asks the referrers API (through wharf). A registry without the API answers
// a push with a subject without OCI-Subject; the spec then asks the client to keep the referrers
// tag (sha256-<hex>) itself, which is what this setup does in that case, as oras and regclient do.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, sha256, type TestImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startReferrersApiRegistry, type ReferrersApiRegistry } from '../support/referrers-api-registry.ts';
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

/** What the suite's setup does, plus the client's part of the tag schema when OCI-Subject is absent. */
class ConformanceSetup {
  readonly fallbacks: string[] = [];
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
    if (!subject) return;
    const ociSubject = res.headers.get('oci-subject');
    this.ociSubjects.push(ociSubject);
    if (ociSubject === subject) return;
    // No OCI-Subject: the registry did not index it; the client keeps the referrers tag.
    await this.#addToReferrersTag(subject, p);
  }

  async #addToReferrersTag(subject: string, p: Pushed): Promise<void> {
    const tag = `sha256-${subject.slice('sha256:'.length)}`;
    this.fallbacks.push(tag);
    const got = await fetch(`${this.registry}/v2/${REPO}/manifests/${tag}`, { headers: { accept: OCI_INDEX } });
    const index: { manifests: object[] } = got.status === 200 ? ((await got.json()) as { manifests: object[] }) : { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] } as { manifests: object[] };
    if (got.status !== 200) await got.arrayBuffer();
    const m = JSON.parse(p.body.toString('utf8')) as { artifactType?: string; config?: { mediaType: string }; annotations?: Record<string, string> };
    const artifactType = m.artifactType ?? m.config?.mediaType;
    index.manifests.push({ mediaType: p.mediaType, digest: p.digest, size: p.body.length, ...(artifactType ? { artifactType } : {}), ...(m.annotations ? { annotations: m.annotations } : {}) });
    const put = await fetch(`${this.registry}/v2/${REPO}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body: JSON.stringify(index) });
    expect(put.status).toBe(201);
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
    let setup: ConformanceSetup;

    beforeAll(async () => {
      registry = await startUpstreamRegistry();
      front = api ? await startReferrersApiRegistry(registry.url) : undefined;
      const upstreamUrl = front?.url ?? registry.url;
      wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstreamUrl, default: true }] });
      setup = new ConformanceSetup(upstreamUrl);
    });

    afterAll(async () => {
      await wharf?.stop();
      await front?.stop();
      await registry?.stop();
    });

    const get = async (digest: string, artifactType?: string) => {
      const query = artifactType ? `?${new URLSearchParams({ artifactType })}` : '';
      const res = await fetch(`${wharf.url}/v2/${REPO}/referrers/${digest}${query}`);
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
      // The suite's `Expect(resp.Header().Get("OCI-Subject"))`: met by the API, absent on 2.8,
      // whose referrers the setup then keeps in the tag schema.
      if (api) {
        expect(setup.ociSubjects).toEqual([...Array(5).fill(manifest4.manifest.digest), manifest3.manifest.digest]);
        expect(setup.fallbacks).toEqual([]);
      } else {
        expect(setup.ociSubjects).toEqual(Array(6).fill(null));
        expect(new Set(setup.fallbacks).size).toBe(2);
      }
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
