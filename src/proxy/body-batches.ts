// A fill body read as batches: everything that arrived while the reader was busy with the last
// batch (its disk write), handed over at once. A Node stream (undici's body) is read by 'data'
// events, without async iteration's promise and Readable.read() per 64 KiB chunk: receiving
// alone went from about 800 MB/s to 1.2-1.3 GB/s here that way. A plain connection's body
// (plain-body.ts) hands each socket read straight to the queue, with no stream at all. Any other
// body (a store reader, a resuming body) is pumped by iteration into the same queue. Past
// maxBytes queued the body is held back (paused), so memory stays bounded when the disk or the
// hash is behind.
//
// Each chunk is copied on arrival into a staging buffer (shared memory, which the hash thread
// reads as it is) and dropped: chunks held until the write in flight finished outlived
// young-generation collections, and their promoted 64 KiB buffers made V8 run a full collection
// every ~60 ms of a fill, costing more CPU than the hash. A batch is therefore a view of a
// staging buffer, lent to the reader until it releases it. A few are lent at once, so the hash
// thread may still hash one batch while the next is written: waiting for both before the next
// write left one of two cores idle about 15 % of a fill (docs/benchmarks.md). A plain connection reads straight
// into the staging buffer's free end (readRegion), and then nothing is copied: the copy was
// 10 % of the main thread's time in a fill on a Xeon.
import { finished, type Readable } from 'node:stream';
import type { FillBody } from './blob-fill.ts';
import { PlainBody } from './plain-body.ts';

export interface BatchHooks {
  /** Each chunk as it arrives (the rate floor counts them). */
  received?(bytes: number): void;
  /** The body is held back because the reader is behind: not the upstream being slow. */
  paused?(): void;
  resumed?(): void;
}

/** Bytes lent by bodyBatches: valid until release(), after which their memory is reused. */
export interface Batch {
  readonly bytes: Uint8Array;
  /** The reader is done with the bytes (call once; later calls do nothing). */
  release(): void;
}

/**
 * Batches of the body's bytes in arrival order, none empty. At most STAGING_BUFFERS - 1 are
 * lent at once: while that many are unreleased, the next waits (and the body is held back once
 * maxBytes are queued). Ends when the body ends; throws the body's error (a premature close is
 * one) once the bytes before it were handed over. Leaving early destroys the body.
 */
export async function* bodyBatches(body: FillBody, maxBytes: number, hooks: BatchHooks = {}): AsyncGenerator<Batch> {
  const queue = new BatchQueue(maxBytes, hooks);
  const stop = body instanceof PlainBody ? feedFromPlain(body, queue) : isNodeReadable(body) ? feedFromStream(body, queue) : feedFromIterable(body, queue);
  try {
    for (;;) {
      const batch = queue.take();
      if (batch) yield batch;
      // Bytes queued but every other buffer lent: a release wakes us.
      else if (queue.queued > 0) await queue.arrival();
      else if (queue.failure !== undefined) throw queue.failure;
      else if (queue.ended) return;
      else await queue.arrival();
    }
  } finally {
    stop(!queue.ended);
  }
}

// First staging size; each doubles as the batches it meets grow, to about maxBytes + one chunk.
const STAGING_MIN = 64 << 10;
// The least free memory offered for a read in place: a smaller read would cost more syscalls.
const READ_IN_PLACE_MIN = 64 << 10;
// Staging buffers per body: one filling, the rest lent. Three lent let a batch's hash lag the
// writes after it by two batches; each buffer can grow to about maxBytes.
const STAGING_BUFFERS = 4;

class BatchQueue {
  readonly #maxBytes: number;
  readonly #hooks: BatchHooks;
  // The buffer arrivals are copied into; those released, ready to fill next; how many exist.
  #filling: Buffer | undefined;
  readonly #free: Buffer[] = [];
  #made = 0;
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
    return this.#bytes;
  }

  push(chunk: Uint8Array): void {
    const length = chunk.byteLength;
    if (length === 0) return;
    // Already where it would be copied to: a read that landed in the region given last.
    const filling = this.#filling;
    const inPlace = filling !== undefined && chunk.buffer === filling.buffer && chunk.byteOffset === filling.byteOffset + this.#bytes;
    if (!inPlace) this.#room(this.#bytes + length).set(chunk, this.#bytes);
    this.#bytes += length;
    this.#hooks.received?.(length);
    if (this.#bytes >= this.#maxBytes && !this.#holding) {
      this.#holding = true;
      this.#hooks.paused?.();
      this.hold();
    }
    this.#signal();
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
   * lands there after the buffers swapped lands past the batch handed out, and push copies it;
   * the buffer is filled again only after some read landed (take hands out nothing before).
   */
  readRegion(): Uint8Array | undefined {
    if (this.#holding) return undefined;
    return this.#room(this.#bytes + READ_IN_PLACE_MIN).subarray(this.#bytes);
  }

  /**
   * What is queued, lent until released; undefined when nothing is, or when no buffer is left to
   * fill next (every other one is lent). A held body is let go.
   */
  take(): Batch | undefined {
    if (this.#bytes === 0) return undefined;
    const next = this.#free.pop() ?? (this.#made < STAGING_BUFFERS ? null : undefined);
    if (next === undefined) return undefined;
    const full = this.#filling!;
    const bytes = full.subarray(0, this.#bytes);
    // null: the next arrivals get a buffer of their own, made when they come (#room).
    this.#filling = next ?? undefined;
    this.#bytes = 0;
    if (this.#holding) {
      this.#holding = false;
      this.#hooks.resumed?.();
      this.release();
    }
    let lent = true;
    return {
      bytes,
      release: () => {
        if (!lent) return;
        lent = false;
        this.#free.push(full);
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

function isNodeReadable(body: FillBody): body is FillBody & Readable {
  const b = body as Partial<Readable>;
  return typeof b.on === 'function' && typeof b.pause === 'function' && typeof b.resume === 'function' && typeof b.off === 'function';
}

/** A plain connection's body hands each read straight to the queue (plain-body.ts). */
function feedFromPlain(body: PlainBody, queue: BatchQueue): (cut: boolean) => void {
  const attached = body.attach(queue);
  queue.hold = attached.hold;
  queue.release = attached.release;
  return (cut) => attached.detach(cut);
}

/** Flowing mode with a 'data' listener; returns how to stop (destroying the body when cut short). */
function feedFromStream(body: Readable, queue: BatchQueue): (cut: boolean) => void {
  const onData = (chunk: Uint8Array) => queue.push(chunk);
  queue.hold = () => body.pause();
  queue.release = () => body.resume();
  const cleanup = finished(body, { writable: false }, (err) => {
    if (err) queue.fail(err);
    else queue.end();
  });
  body.on('data', onData);
  return (cut) => {
    body.off('data', onData);
    cleanup();
    if (cut) body.destroy();
  };
}

/** A pump iterating the body into the queue, waiting while the queue holds it back. */
function feedFromIterable(body: FillBody, queue: BatchQueue): (cut: boolean) => void {
  let stopped = false;
  let letGo: (() => void) | undefined;
  queue.release = () => {
    letGo?.();
    letGo = undefined;
  };
  const iterator = body[Symbol.asyncIterator]();
  void (async () => {
    try {
      for (;;) {
        if (queue.holding) await new Promise<void>((resolve) => (letGo = resolve));
        if (stopped) return;
        const next = await iterator.next();
        if (stopped) return;
        if (next.done) break;
        queue.push(next.value);
      }
      queue.end();
    } catch (err) {
      queue.fail(err);
    }
  })();
  return (cut) => {
    stopped = true;
    queue.release();
    if (!cut) return;
    body.destroy?.();
    void iterator.return?.().catch(() => undefined);
  };
}
