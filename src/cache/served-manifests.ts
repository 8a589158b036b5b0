// A client got a manifest: its blobs are about to be pulled, so they count as used now and
// eviction leaves them alone while the pull runs. A pull resolves the same manifest repeatedly,
// so each manifest's blobs are reported once per while, not on every request.
import { LRUCache } from 'lru-cache';
import type { StoredManifest } from './manifest-store.ts';
import { manifestRefs } from '../oci/manifest-refs.ts';

export class ServedManifests {
  readonly #recent = new LRUCache<string, true>({ max: 4096, ttl: 30_000 });

  /** The blobs of this manifest, unless it was served lately (then none). */
  blobsToMarkUsed(manifest: StoredManifest): readonly string[] {
    if (this.#recent.has(manifest.digest)) return [];
    this.#recent.set(manifest.digest, true);
    return manifestRefs(manifest.body).blobs;
  }
}
