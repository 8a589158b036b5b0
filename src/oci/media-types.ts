// Manifest media types wharf stores and serves verbatim.

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociArtifactManifest: 'application/vnd.oci.artifact.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/**
 * What wharf asks upstreams for: every manifest type, so that a tag resolves to the index/list
 * (never a down-converted single-platform manifest) and digests stay those of the upstream.
 */
export const UPSTREAM_MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.dockerManifest,
  MediaType.ociArtifactManifest,
  MediaType.dockerSchema1Signed,
  MediaType.dockerSchema1,
].join(', ');

const KNOWN = new Set<string>(Object.values(MediaType));

/** Strips parameters and case from a Content-Type value. */
export function baseMediaType(contentType: string | undefined): string {
  if (!contentType) return '';
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

export function isKnownManifestType(mediaType: string): boolean {
  return KNOWN.has(mediaType);
}

/**
 * Schema1 signed manifests are digested over their JWS payload, not their bytes, so their
 * digest cannot be checked against the body.
 */
export function isDigestVerifiable(mediaType: string): boolean {
  return mediaType !== MediaType.dockerSchema1Signed && mediaType !== MediaType.dockerSchema1;
}

/**
 * The media type of a manifest body: the upstream's Content-Type when it names a manifest type,
 * else the body's own mediaType field (some registries send application/json).
 */
export function resolveManifestMediaType(contentType: string | undefined, body: Buffer): string {
  const fromHeader = baseMediaType(contentType);
  if (isKnownManifestType(fromHeader)) return fromHeader;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (parsed && typeof parsed === 'object' && 'mediaType' in parsed && typeof parsed.mediaType === 'string') {
      return parsed.mediaType;
    }
    if (parsed && typeof parsed === 'object' && 'schemaVersion' in parsed && parsed.schemaVersion === 1) {
      return MediaType.dockerSchema1Signed;
    }
  } catch {
    // not JSON: fall through to the header value
  }
  return fromHeader || 'application/octet-stream';
}
