// Resolves the configured pinned images to every digest they need kept: the manifest (for an
// index, every child manifest) and all their blobs, from what the manifest store holds. An
// image not cached yet pins nothing until it is pulled or warmed.
import type { ManifestStore } from './manifest-store.ts';
import type { LocatedImage } from './located-image.ts';
import { manifestRefs } from '../oci/manifest-refs.ts';
import { ConfigError } from '../config/load-config.ts';

/** cache.pinned as store keys; a reference this wharf cannot route is a config error. */
export function locatePinned(refs: readonly string[], locate: (text: string) => LocatedImage): LocatedImage[] {
  const problems: string[] = [];
  const located = refs.flatMap((text, i) => {
    try {
      return [locate(text)];
    } catch (err) {
      problems.push(`cache.pinned.${i}: ${(err as Error).message}`);
      return [];
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return located;
}

export async function pinnedDigests(images: readonly LocatedImage[], store: ManifestStore): Promise<Set<string>> {
  const keep = new Set<string>();
  for (const { repo, reference } of images) {
    const top = reference.digest ?? (reference.tag !== undefined ? (await store.getTag(repo, reference.tag))?.digest : undefined);
    if (top) await collect(top, store, keep);
  }
  return keep;
}

async function collect(digest: string, store: ManifestStore, keep: Set<string>): Promise<void> {
  if (keep.has(digest)) return;
  keep.add(digest);
  const manifest = await store.getManifest(digest);
  if (!manifest) return;
  const refs = manifestRefs(manifest.body);
  for (const blob of refs.blobs) keep.add(blob);
  for (const child of refs.manifests) await collect(child.digest, store, keep);
}
