// Every cached blob with its size and last use, in memory, for the size budget and eviction
// order. Loaded from the blob store at start; kept current by commits, hits and evictions. Last
// use is written back to the store (file mtime) at most once a minute per blob, so the LRU
// order survives restarts without a write per hit.
import type { BlobStore } from './blob-store.ts';
import type { Metrics } from '../metrics/metrics.ts';

const DEFAULT_PERSIST_EVERY_MS = 60 * 1000;

interface Entry {
  size: number;
  lastUsed: number;
  persisted: number;
}

export class BlobIndex {
  readonly #store: BlobStore;
  readonly #metrics: Metrics;
  readonly #entries = new Map<string, Entry>();
  readonly #persistEveryMs: number;
  #bytes = 0;

  constructor(deps: { store: BlobStore; metrics: Metrics }, options: { persistEveryMs?: number } = {}) {
    this.#store = deps.store;
    this.#metrics = deps.metrics;
    this.#persistEveryMs = options.persistEveryMs ?? DEFAULT_PERSIST_EVERY_MS;
  }

  /** Reads the store. Blobs committed or removed meanwhile keep what the live updates said. */
  async load(): Promise<void> {
    for await (const blob of this.#store.list()) {
      if (!this.#entries.has(blob.digest)) this.#set(blob.digest, { size: blob.size, lastUsed: blob.lastUsed, persisted: blob.lastUsed });
    }
  }

  get bytes(): number {
    return this.#bytes;
  }

  get count(): number {
    return this.#entries.size;
  }

  has(digest: string): boolean {
    return this.#entries.has(digest);
  }

  added(digest: string, size: number): void {
    const now = Date.now();
    this.#set(digest, { size, lastUsed: now, persisted: now });
  }

  used(digest: string): void {
    const entry = this.#entries.get(digest);
    if (!entry) return;
    const now = Date.now();
    entry.lastUsed = now;
    if (now - entry.persisted < this.#persistEveryMs) return;
    entry.persisted = now;
    this.#store.touch(digest, now).catch(() => undefined); // losing one access time is harmless
  }

  removed(digest: string): void {
    const entry = this.#entries.get(digest);
    if (!entry) return;
    this.#entries.delete(digest);
    this.#bytes -= entry.size;
    this.#publish();
  }

  /** Least recently used first. */
  oldestFirst(): Array<{ digest: string; size: number; lastUsed: number }> {
    return [...this.#entries].map(([digest, e]) => ({ digest, size: e.size, lastUsed: e.lastUsed })).sort((a, b) => a.lastUsed - b.lastUsed);
  }

  #set(digest: string, entry: Entry): void {
    const old = this.#entries.get(digest);
    if (old) this.#bytes -= old.size;
    this.#entries.set(digest, entry);
    this.#bytes += entry.size;
    this.#publish();
  }

  #publish(): void {
    this.#metrics.cacheBytes.set(this.#bytes);
    this.#metrics.cacheBlobs.set(this.#entries.size);
  }
}
