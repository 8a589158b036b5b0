// The staging memory a fill body's bytes gather in, and the batches lent from it (body-batches.ts
// reads bodies into it).
//
// Each chunk is copied on arrival into a staging buffer (shared memory, which the hash thread
// reads as it is) and dropped: chunks held until the write in flight finished outlived
// young-generation collections, and their promoted 64 KiB buffers made V8 run a full collection
// every ~60 ms of a fill, costing more CPU than the hash. A batch is therefore a view of a
// staging buffer, lent to the reader until it releases it. A few are lent at once, so the hash
// thread may still hash one batch while the next is written: waiting for both before the next
// write left one of two cores idle about 15 % of a fill (docs/benchmarks.md). A plain
// connection reads straight into the staging buffer's free end (readRegion), and then nothing
// is copied (the copy was 10 % of the main thread's time in a fill on a Xeon), not even the
// first read after each take, which lands in the buffer just lent and is lent where it lies.
// Only a read asked for while the body was held back lands elsewhere and is copied.
import type { Batch, BatchHooks } from './body-batches.ts';

// First staging size; each doubles as the batches it meets grow, to about maxBytes + one chunk.
const STAGING_MIN = 64 << 10;
// The least free memory offered for a read in place: a smaller read would cost more syscalls.
const READ_IN_PLACE_MIN = 64 << 10;
// Staging buffers per body: one filling, the rest lent. Three lent let a batch's hash lag the
// writes after it by two batches; each buffer can grow to about maxBytes.
const STAGING_BUFFERS = 4;

export class BatchQueue {
  readonly #maxBytes: number;
  readonly #hooks: BatchHooks;
  // The buffer arrivals are copied into; those released, ready to fill next; how many exist.
  #filling: Buffer | undefined;
  readonly #free: Buffer[] = [];
  #made = 0;
  // Lent buffers, by how many of their batches are unreleased.
  readonly #lent = new Map<Buffer, number>();
  // The last region offered for a read, and a read that landed there after take() had lent its
  // buffer: the next read's region is asked for before that read, so the first read after each
  // take lands past the batch just lent. Lent where it lies, as a batch of its own, it costs no
  // copy: copying it was a third of a fill's bytes.
  #offered: { buffer: Buffer; at: number } | undefined;
  #landed: { owner: Buffer; bytes: Uint8Array } | undefined;
  #bytes = 0;
  #wake: (() => void) | undefined;
  #holding = false;
  ended = false;
  failure: unknown;
  /** Set by the feeder: how the body is held back and let go again. */
  hold: () => void = () => undefined;
  release: () => void = () => undefined;

  constructor(maxBytes: number, hooks: BatchHooks) {
    this.#maxBytes = maxBytes;
    this.#hooks = hooks;
  }

  get holding(): boolean {
    return this.#holding;
  }

  /** Bytes received and not yet handed out. */
  get queued(): number {
    return this.#bytes + (this.#landed?.bytes.byteLength ?? 0);
  }

  push(chunk: Uint8Array): void {
    const length = chunk.byteLength;
    const offered = this.#offered;
    this.#offered = undefined;
    if (length === 0) return;
    // Already where it would be copied to: a read that landed in the region given last.
    const filling = this.#filling;
    const inPlace = filling !== undefined && chunk.buffer === filling.buffer && chunk.byteOffset === filling.byteOffset + this.#bytes;
    if (inPlace) this.#bytes += length;
    else if (offered && this.#landedAfterTake(chunk, offered)) {
      this.#landed = { owner: offered.buffer, bytes: chunk };
      this.#lend(offered.buffer);
    } else {
      this.#room(this.#bytes + length).set(chunk, this.#bytes);
      this.#bytes += length;
      this.#hooks.copied?.(length);
    }
    this.#hooks.received?.(length);
    if (this.queued >= this.#maxBytes && !this.#holding) {
      this.#holding = true;
      this.#hooks.paused?.();
      this.hold();
    }
    this.#signal();
  }

  /**
   * A read that landed in a region offered before take() lent its buffer, ahead of anything
   * queued since. Its buffer may be free again by then (the read was slow, the reader fast);
   * nothing fills a free buffer, so it is lent again, not copied from.
   */
  #landedAfterTake(chunk: Uint8Array, offered: { buffer: Buffer; at: number }): boolean {
    const { buffer, at } = offered;
    if (this.#landed !== undefined || this.#bytes !== 0) return false;
    if (chunk.buffer !== buffer.buffer || chunk.byteOffset !== buffer.byteOffset + at) return false;
    if (this.#lent.has(buffer)) return true;
    const free = this.#free.indexOf(buffer);
    if (free === -1) return false;
    this.#free.splice(free, 1);
    return true;
  }

  end(): void {
    this.ended = true;
    this.#signal();
  }

  fail(err: unknown): void {
    if (this.failure === undefined) this.failure = err ?? new Error('body failed');
    this.#signal();
  }

  /**
   * The filling buffer's free end, for the next read to land in. Safe across take(): a read that
   * lands there after the buffers swapped lands past the batch handed out, in a buffer that stays
   * lent (or is lent again, when that batch was released first) until the read's own batch is
   * released too; the buffer is filled again only after some read landed (take hands out nothing
   * before).
   */
  readRegion(): Uint8Array | undefined {
    if (this.#holding) return undefined;
    const buffer = this.#room(this.#bytes + READ_IN_PLACE_MIN);
    this.#offered = { buffer, at: this.#bytes };
    return buffer.subarray(this.#bytes);
  }

  /**
   * What is queued, lent until released; undefined when nothing is, or when no buffer is left to
   * fill next (every other one is lent). A held body is let go.
   */
  take(): Batch | undefined {
    const landed = this.#landed;
    if (landed) {
      // Its bytes came before any in the filling buffer.
      this.#landed = undefined;
      this.#letGo();
      return this.#batch(landed.owner, landed.bytes);
    }
    if (this.#bytes === 0) return undefined;
    const next = this.#free.pop() ?? (this.#made < STAGING_BUFFERS ? null : undefined);
    if (next === undefined) return undefined;
    const full = this.#filling!;
    const bytes = full.subarray(0, this.#bytes);
    // null: the next arrivals get a buffer of their own, made when they come (#room).
    this.#filling = next ?? undefined;
    this.#bytes = 0;
    this.#letGo();
    this.#lend(full);
    return this.#batch(full, bytes);
  }

  #letGo(): void {
    if (!this.#holding) return;
    this.#holding = false;
    this.#hooks.resumed?.();
    this.release();
  }

  #lend(buffer: Buffer): void {
    this.#lent.set(buffer, (this.#lent.get(buffer) ?? 0) + 1);
  }

  /** Bytes of a lent buffer; the buffer is free again once every batch lent from it is released. */
  #batch(owner: Buffer, bytes: Uint8Array): Batch {
    let lent = true;
    return {
      bytes,
      release: () => {
        if (!lent) return;
        lent = false;
        const left = this.#lent.get(owner)! - 1;
        if (left > 0) {
          this.#lent.set(owner, left);
          return;
        }
        this.#lent.delete(owner);
        this.#free.push(owner);
        // A reader waiting for a buffer to take the next batch into may go on.
        this.#signal();
      },
    };
  }

  /** The filling buffer, grown (keeping what it holds) to take wanted bytes. */
  #room(wanted: number): Buffer {
    const current = this.#filling;
    if (current && current.length >= wanted) return current;
    let size = Math.max(STAGING_MIN, current ? current.length : 0);
    while (size < wanted) size *= 2;
    // Past maxBytes the body is held: a batch is at most that and the chunk that crossed it.
    size = Math.max(wanted, Math.min(size, this.#maxBytes + STAGING_MIN));
    const grown = Buffer.from(new SharedArrayBuffer(size));
    if (current && this.#bytes > 0) current.copy(grown, 0, 0, this.#bytes);
    // A grown buffer replaces the one it outgrew (which is dropped), so the count holds.
    if (!current) this.#made++;
    this.#filling = grown;
    return grown;
  }

  arrival(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

