// The one place that keeps the cache's books: which blobs were used when (the index eviction
// reads) and what was added. Eviction follows from these events: a committed blob may push the
// cache over its budget, so each commit asks the evictor to enforce it.
import type { Logger } from 'pino';
import type { BlobIndex } from './blob-index.ts';
import type { Evictor } from './evictor.ts';
import type { StoredManifest } from './manifest-store.ts';
import { ServedManifests } from './served-manifests.ts';

export class CacheAccounting {
  readonly #index: BlobIndex;
  readonly #evictor: Evictor;
  readonly #log: Logger;
  readonly #servedManifests = new ServedManifests();

  constructor(deps: { index: BlobIndex; evictor: Evictor; logger: Logger }) {
    this.#index = deps.index;
    this.#evictor = deps.evictor;
    this.#log = deps.logger;
  }

  /** A blob was served (or is about to be): eviction leaves recently used blobs alone. */
  used(digest: string): void {
    this.#index.used(digest);
  }

  /** A blob was verified and stored. */
  committed(digest: string, size: number): void {
    this.#index.added(digest, size);
    this.#evictor.enforce().catch((err: unknown) => this.#log.error({ err: String(err) }, 'eviction failed'));
  }

  /**
   * A client got this manifest: its blobs are about to be pulled, so they count as used now and
   * eviction leaves them alone while the pull runs.
   */
  manifestServed(manifest: StoredManifest): void {
    for (const blob of this.#servedManifests.blobsToMarkUsed(manifest)) this.#index.used(blob);
  }
}
