// What linking a manifest to a repository means: the manifest, what it names (config, layers,
// an index's child manifests), and the blobs of the children already cached. Used when a
// manifest is fetched or resolved for a repository, when a bundle is imported, and once at
// start for tags cached before links existed.
import type { ManifestStore, RepoKey, StoredManifest } from './manifest-store.ts';
import { isSupportedDigest } from '../oci/digest.ts';
import { manifestRefs } from '../oci/manifest-refs.ts';

export type LinkStore = Pick<ManifestStore, 'putLinks' | 'hasLink' | 'getManifest'>;

/** How deep an index's cached children are linked with it (an index of indexes is rare). */
const MAX_INDEX_DEPTH = 2;

export async function linkManifest(store: LinkStore, repo: RepoKey, manifest: StoredManifest, depth = 0): Promise<void> {
  const refs = manifestRefs(manifest.body);
  // A name that is not a digest wharf can verify is the manifest's problem, not a link.
  const children = refs.manifests.map((m) => m.digest).filter(isSupportedDigest);
  await store.putLinks(repo, [manifest.digest, ...refs.blobs.filter(isSupportedDigest), ...children]);
  if (depth >= MAX_INDEX_DEPTH) return;
  for (const child of children) {
    const cached = await store.getManifest(child);
    if (cached) await linkManifest(store, repo, cached, depth + 1);
  }
}

/**
 * Links every tagged image to its repository: a tag record says the repository's upstream (or
 * a bundle) named that manifest for it. For caches written before links existed; idempotent.
 */
export async function linkTaggedImages(store: Pick<ManifestStore, 'scanTags'> & LinkStore): Promise<number> {
  let linked = 0;
  for await (const { repo, record } of store.scanTags()) {
    const manifest = await store.getManifest(record.digest);
    if (!manifest || (await store.hasLink(repo, manifest.digest))) continue;
    await linkManifest(store, repo, manifest);
    linked++;
  }
  return linked;
}
