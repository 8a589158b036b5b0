// OCI artifacts as registries hold them (image-spec 1.1): a Helm chart (its own config media
// type), and SBOMs and signatures that refer to an image through `subject`, with an
// `artifactType` and the empty config. Deterministic, so digests are stable from run to run.
import { gzipSync } from 'node:zlib';
import { sha256, type TestImage, type TestIndex } from './test-images.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';
export const HELM_CONFIG = 'application/vnd.cncf.helm.config.v1+json';
export const HELM_CHART = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';

/** An OCI manifest with any config and layers, pushable with pushImage (config first, then layers). */
export function makeArtifact(opts: {
  config: { mediaType: string; body: Buffer };
  layers: Array<{ mediaType: string; body: Buffer; annotations?: Record<string, string> }>;
  artifactType?: string;
  subject?: { mediaType: string; digest: string; size: number };
  annotations?: Record<string, string>;
}): TestImage {
  const config = { digest: sha256(opts.config.body), mediaType: opts.config.mediaType, body: opts.config.body };
  const layers = opts.layers.map((l) => ({ digest: sha256(l.body), mediaType: l.mediaType, body: l.body, annotations: l.annotations }));
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      ...(opts.artifactType ? { artifactType: opts.artifactType } : {}),
      config: { mediaType: config.mediaType, digest: config.digest, size: config.body.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.body.length, ...(l.annotations ? { annotations: l.annotations } : {}) })),
      ...(opts.subject ? { subject: opts.subject } : {}),
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    }),
  );
  return {
    manifest: { digest: sha256(body), mediaType: OCI_MANIFEST, body },
    config,
    layers: layers.map(({ digest, mediaType, body }) => ({ digest, mediaType, body })),
    platform: { architecture: 'unknown', os: 'unknown' },
  };
}

/** An artifact with the empty config `{}` and one layer: an SBOM, a signature, an attestation. */
export function makeReferrer(opts: { artifactType: string; layerType: string; content: string; subject: TestImage['manifest']; annotations?: Record<string, string> }): TestImage {
  return makeArtifact({
    config: { mediaType: EMPTY_CONFIG, body: Buffer.from('{}') },
    layers: [{ mediaType: opts.layerType, body: Buffer.from(opts.content) }],
    artifactType: opts.artifactType,
    subject: { mediaType: opts.subject.mediaType, digest: opts.subject.digest, size: opts.subject.body.length },
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  });
}

/** A Helm chart as `helm push` stores it: the Chart.yaml as JSON config, the chart .tgz as the layer. */
export function makeHelmChart(name: string, version: string): TestImage {
  const chartYaml = `apiVersion: v2\nname: ${name}\nversion: ${version}\ndescription: wharf test chart\n`;
  const tgz = gzipSync(tarOf([{ path: `${name}/Chart.yaml`, body: Buffer.from(chartYaml) }]), { level: 9 });
  return makeArtifact({
    config: { mediaType: HELM_CONFIG, body: Buffer.from(JSON.stringify({ apiVersion: 'v2', name, version, description: 'wharf test chart' })) },
    layers: [{ mediaType: HELM_CHART, body: tgz }],
    annotations: { 'org.opencontainers.image.title': name, 'org.opencontainers.image.version': version },
  });
}

/** The referrers tag schema's index for a subject, as a client pushes it to a registry without the API. */
export function referrersTagIndex(referrers: readonly TestImage[]): TestIndex {
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: referrers.map(descriptorOf) }));
  return { digest: sha256(body), mediaType: OCI_INDEX, body };
}

/** A referrer's entry in a referrers list: its artifactType (or config type) and annotations. */
export function descriptorOf(artifact: TestImage): { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> } {
  const m = JSON.parse(artifact.manifest.body.toString('utf8')) as { artifactType?: string; config: { mediaType: string }; annotations?: Record<string, string> };
  return {
    mediaType: artifact.manifest.mediaType,
    digest: artifact.manifest.digest,
    size: artifact.manifest.body.length,
    artifactType: m.artifactType ?? m.config.mediaType,
    ...(m.annotations ? { annotations: m.annotations } : {}),
  };
}

/** A minimal ustar archive of regular files. */
function tarOf(files: Array<{ path: string; body: Buffer }>): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    const header = Buffer.alloc(512);
    header.write(f.path, 0, 100, 'utf8');
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${f.body.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write(`${(1_700_000_000).toString(8).padStart(11, '0')}\0`, 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, f.body, Buffer.alloc((512 - (f.body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
