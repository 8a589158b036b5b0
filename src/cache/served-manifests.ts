// A client got a manifest: its blobs are about to be pulled, so they count as used now and
// eviction leaves them alone while the pull runs. A pull resolves the same manifest repeatedly,
// so each manifest's blobs are reported once per while, not on every request.
//
// What was reported is kept beside the manifest object itself (a WeakMap), so it is held exactly
// as long as memory holds that manifest, whatever the number of manifests. A fixed-size LRU of
// digests held 4096: serving more distinct manifests than that per while (a cache of 10 000
// tags under random pulls) missed it on nearly every request, and each miss parsed the body
// again on the fast path (bench/scale.ts: 3x fewer requests per second, RSS doubled under load).
import type { StoredManifest } from './manifest-store.ts';
import { manifestRefs } from '../oci/manifest-refs.ts';

/** How long a manifest's blobs count as reported. */
export const REPORT_EVERY_MS = 30_000;

export class ServedManifests {
  readonly #reported = new WeakMap<StoredManifest, { readonly blobs: readonly string[]; at: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The blobs of this manifest, unless it was served lately (then none). */
  blobsToMarkUsed(manifest: StoredManifest): readonly string[] {
    const now = this.#now();
    const seen = this.#reported.get(manifest);
    if (seen && now - seen.at < REPORT_EVERY_MS) return [];
    const blobs = seen?.blobs ?? manifestRefs(manifest.body).blobs;
    this.#reported.set(manifest, { blobs, at: now });
    return blobs;
  }
}
