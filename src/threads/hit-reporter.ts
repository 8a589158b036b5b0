// Gathers what a hit thread learns that the main thread keeps books on (blob last use for
// eviction, pulls per repository) and sends it in batches, not a message per request.
import type { StoredManifest } from '../cache/manifest-store.ts';
import { ServedManifests } from '../cache/served-manifests.ts';
import type { HitThreadMessage } from './messages.ts';

const FLUSH_EVERY_MS = 250;

export class HitReporter {
  readonly #send: (message: HitThreadMessage) => void;
  readonly #blobs = new Set<string>();
  #pulled: string[] = [];
  readonly #servedManifests = new ServedManifests();
  readonly #timer: NodeJS.Timeout;

  constructor(send: (message: HitThreadMessage) => void) {
    this.#send = send;
    this.#timer = setInterval(() => this.flush(), FLUSH_EVERY_MS);
    this.#timer.unref();
  }

  blobUsed(digest: string): void {
    this.#blobs.add(digest);
  }

  manifestServed(manifest: StoredManifest): void {
    for (const blob of this.#servedManifests.blobsToMarkUsed(manifest)) this.#blobs.add(blob);
  }

  /** TopRepositories' one method, so the access-log middleware can count pulls here. */
  record(repository: string): void {
    this.#pulled.push(repository);
  }

  flush(): void {
    if (this.#blobs.size === 0 && this.#pulled.length === 0) return;
    this.#send({ type: 'used', blobs: [...this.#blobs], pulled: this.#pulled });
    this.#blobs.clear();
    this.#pulled = [];
  }

  stop(): void {
    clearInterval(this.#timer);
    this.flush();
  }
}
