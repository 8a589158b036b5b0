// What wharf writes into a bundle's index.json besides the OCI layout itself: where each image
// came from, so an import can recreate the tag in the right upstream's namespace.
export const BUNDLE_ANNOTATIONS = {
  upstream: 'io.wharf.upstream',
  repository: 'io.wharf.repository',
  tag: 'io.wharf.tag',
  /** On index.json itself: "manifests-first" when every manifest precedes every blob. */
  order: 'io.wharf.bundle.order',
} as const;

/** The largest entry taken as a possible manifest (the distribution spec's limit). */
export const MAX_MANIFEST_ENTRY_BYTES = 4 * 1024 * 1024;
