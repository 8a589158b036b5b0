// Manifest media types wharf stores and serves verbatim, and the RFC 6838 grammar every media
// type wharf sends in a header must satisfy.

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/**
 * Docker schema1 (deprecated, refused by current registries and clients): never cached, since
 * its digest is taken over a JWS payload, not over the bytes wharf would keep.
 */
export const SCHEMA1_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
]);

/**
 * What wharf asks upstreams for: the four manifest types it caches, indexes first, so that a
 * tag resolves to the index/list (never a down-converted single-platform manifest) and digests
 * stay those of the upstream. Artifacts come as OCI image manifests (OCI 1.1).
 */
export const UPSTREAM_MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.dockerManifest].join(', ');

const KNOWN = new Set<string>(Object.values(MediaType));

/** Strips parameters and case from a Content-Type value. */
export function baseMediaType(contentType: string | undefined): string {
  if (!contentType) return '';
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/** One of the manifest or index types wharf caches. */
export function isKnownManifestType(mediaType: string): boolean {
  return KNOWN.has(mediaType);
}

export function isIndexType(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

// RFC 6838 section 4.2: type-name "/" subtype-name, each a restricted-name of at most 127 chars.
const RESTRICTED_NAME = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}";
const MEDIA_TYPE = new RegExp(`^${RESTRICTED_NAME}/${RESTRICTED_NAME}$`);

/** A media type by the RFC 6838 grammar (no parameters): safe in a header, no control chars. */
export function isValidMediaType(value: string): boolean {
  return MEDIA_TYPE.test(value);
}
