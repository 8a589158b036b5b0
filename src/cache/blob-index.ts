// Every cached blob with its size and last use, in memory, for the size budget and eviction
// order. Loaded from the blob store at start; kept current by commits, hits and evictions. Last
// use is written back to the store (file mtime) at most once a minute per blob, so the LRU
// order survives restarts without a write per hit.
//
// One entry per blob, so its size is what a big cache pays: a digest string of its own (the
// names the store lists are joined strings that keep their parts alive) and a slot in typed
// arrays for the numbers, ~140 bytes a blob, where a Map of objects cost ~265 (bench:scale).
import type { BlobStore } from './blob-store.ts';
import type { Metrics } from '../metrics/metrics.ts';

const DEFAULT_PERSIST_EVERY_MS = 60 * 1000;
const INITIAL_SLOTS = 1024;

export class BlobIndex {
  readonly #store: BlobStore;
  readonly #metrics: Metrics;
  readonly #persistEveryMs: number;
  /** digest -> slot in the arrays below. */
  readonly #slots = new Map<string, number>();
  #digests: Array<string | undefined> = [];
  #size = new Float64Array(INITIAL_SLOTS);
  #lastUsed = new Float64Array(INITIAL_SLOTS);
  #persisted = new Float64Array(INITIAL_SLOTS);
  /** Slots freed by removals, reused first. */
  readonly #free: number[] = [];
  #bytes = 0;
  /** The last use handed out: uses within one millisecond still keep their order (see #now). */
  #lastTick = 0;

  constructor(deps: { store: BlobStore; metrics: Metrics }, options: { persistEveryMs?: number } = {}) {
    this.#store = deps.store;
    this.#metrics = deps.metrics;
    this.#persistEveryMs = options.persistEveryMs ?? DEFAULT_PERSIST_EVERY_MS;
  }

  /** Reads the store. Blobs committed or removed meanwhile keep what the live updates said. */
  async load(): Promise<void> {
    for await (const blob of this.#store.list()) {
      if (!this.#slots.has(blob.digest)) this.#set(blob.digest, blob.size, blob.lastUsed, blob.lastUsed);
    }
  }

  get bytes(): number {
    return this.#bytes;
  }

  get count(): number {
    return this.#slots.size;
  }

  has(digest: string): boolean {
    return this.#slots.has(digest);
  }

  added(digest: string, size: number): void {
    const now = this.#now();
    this.#set(digest, size, now, now);
  }

  used(digest: string): void {
    const slot = this.#slots.get(digest);
    if (slot === undefined) return;
    const now = this.#now();
    this.#lastUsed[slot] = now;
    if (now - this.#persisted[slot]! < this.#persistEveryMs) return;
    this.#persisted[slot] = now;
    this.#store.touch(digest, now).catch(() => undefined); // losing one access time is harmless
  }

  removed(digest: string): void {
    const slot = this.#slots.get(digest);
    if (slot === undefined) return;
    this.#slots.delete(digest);
    this.#digests[slot] = undefined;
    this.#bytes -= this.#size[slot]!;
    this.#free.push(slot);
    this.#publish();
  }

  /** Least recently used first. */
  oldestFirst(): Array<{ digest: string; size: number; lastUsed: number }> {
    const order = Uint32Array.from(this.#slots.values());
    const lastUsed = this.#lastUsed;
    order.sort((a, b) => lastUsed[a]! - lastUsed[b]!);
    return Array.from(order, (slot) => ({ digest: this.#digests[slot]!, size: this.#size[slot]!, lastUsed: lastUsed[slot]! }));
  }

  // Date.now() with each use strictly after the one before: two blobs used in the same
  // millisecond tied, and eviction could then take the younger of them (a flaky test found it).
  // A microsecond past the last one when the clock has not moved; it never runs ahead by more
  // than the uses of one busy millisecond.
  #now(): number {
    const now = Date.now();
    this.#lastTick = now > this.#lastTick ? now : this.#lastTick + 0.001;
    return this.#lastTick;
  }

  #set(digest: string, size: number, lastUsed: number, persisted: number): void {
    let slot = this.#slots.get(digest);
    if (slot === undefined) {
      slot = this.#free.pop() ?? this.#digests.length;
      if (slot >= this.#size.length) this.#grow();
      const own = ownString(digest);
      this.#slots.set(own, slot);
      this.#digests[slot] = own;
    } else {
      this.#bytes -= this.#size[slot]!;
    }
    this.#size[slot] = size;
    this.#lastUsed[slot] = lastUsed;
    this.#persisted[slot] = persisted;
    this.#bytes += size;
    this.#publish();
  }

  #grow(): void {
    const grown = (old: Float64Array) => {
      const next = new Float64Array(old.length * 2);
      next.set(old);
      return next;
    };
    this.#size = grown(this.#size);
    this.#lastUsed = grown(this.#lastUsed);
    this.#persisted = grown(this.#persisted);
  }

  #publish(): void {
    this.#metrics.cacheBytes.set(this.#bytes);
    this.#metrics.cacheBlobs.set(this.#slots.size);
  }
}

/**
 * A flat copy of a digest: what the store lists is `${algorithm}:${hex}` (a string that holds
 * both parts), and a digest cut from a request keeps the whole request line alive.
 */
function ownString(s: string): string {
  const copy = Buffer.from(s, 'latin1').toString('latin1');
  return copy === s ? copy : s; // not latin1 (no digest is): kept as it is
}
