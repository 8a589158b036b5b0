// Reading a blob while it is being filled, through the store's reader of the fill: a cursor that
// says what may be sent next as verified bytes land, and the stream way of sending them (Node
// streams: web streams cost 30-40 % more CPU per byte), the fallback when sendfile cannot be
// used (file-sender.ts).
// Callers send headers first.
import type { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { BlobFill } from '../proxy/blob-fill.ts';
import type { BlobReader } from '../cache/blob-store.ts';

/**
 * What following a fill reads of it: the fill itself on the thread that runs it, or a hit
 * thread's view of a fill the main thread runs (threads/followed-fill.ts).
 */
export type FollowedFill = Pick<BlobFill, 'state' | 'error' | 'written' | 'ended' | 'readable' | 'changed' | 'openReader'>;

// Readers following a fill reuse two buffers of this size each: a herd of clients on one fill
// then costs a fixed amount of memory instead of a fresh buffer per read per client.
const FOLLOW_CHUNK = 256 << 10;

export class FillAbortedError extends Error {}

export interface FillRange {
  readonly start: number;
  /** Unset: to the end of the blob, whose size may not be known yet. */
  readonly end: number | undefined;
}

/** Where a reader of [range] of a fill is, and how much it may send from there. */
export class FillCursor {
  readonly #fill: FollowedFill;
  readonly #range: FillRange;
  #position: number;

  constructor(fill: FollowedFill, range: FillRange) {
    this.#fill = fill;
    this.#range = range;
    this.#position = range.start;
  }

  get position(): number {
    return this.#position;
  }

  get finished(): boolean {
    return this.#position > this.#last();
  }

  advance(bytes: number): void {
    this.#position += bytes;
  }

  /**
   * Bytes that may be sent from the position, at most max. Waits for the fill until at least
   * minBatch are ready (or all that remain); 0 once finished. Throws when the fill failed.
   */
  async ready(max: number, minBatch: number): Promise<number> {
    for (;;) {
      const fill = this.#fill;
      if (fill.state === 'failed') throw new FillAbortedError(fill.error?.message);
      const last = this.#last();
      if (this.#position > last) return 0;
      const available = Math.min(fill.readable, last + 1) - this.#position;
      if (available > 0 && (available >= minBatch || fill.readable > last || fill.ended)) return Math.min(available, max);
      await fill.changed();
    }
  }

  // The last byte to send, as far as is known now.
  #last(): number {
    const { end } = this.#range;
    return end !== undefined ? end : this.#fill.ended ? this.#fill.written - 1 : Infinity;
  }
}

/**
 * Streams [range] of a blob that is still being filled, reading what the fill has written as it
 * grows. A failed fill destroys the response: after Content-Length went out, a cut connection
 * is the only way to tell the client the body is not whole.
 */
export async function streamFill(res: ServerResponse, fill: FollowedFill, range: FillRange, opened?: BlobReader): Promise<void> {
  let reader = opened;
  const buffers = [Buffer.allocUnsafe(FOLLOW_CHUNK), Buffer.allocUnsafe(FOLLOW_CHUNK)];
  // A buffer may be read into again once the socket has taken what was last written from it.
  const flushed: Array<Promise<void> | undefined> = [undefined, undefined];
  // A destroyed response may never call back for its pending writes.
  const closed = new Promise<void>((resolve) => res.once('close', resolve));
  let next = 0;
  try {
    reader ??= await fill.openReader();
    const cursor = new FillCursor(fill, range);
    while (!cursor.finished) {
      if (res.destroyed) return;
      const len = await cursor.ready(FOLLOW_CHUNK, 1);
      if (len === 0) continue;
      if (flushed[next]) await Promise.race([flushed[next], closed]);
      if (res.destroyed) return;
      const buf = buffers[next]!;
      const bytesRead = await reader.read(buf, 0, len, cursor.position);
      if (res.destroyed) return;
      if (bytesRead === 0) {
        await fill.changed();
        continue;
      }
      cursor.advance(bytesRead);
      let accepted = true;
      flushed[next] = new Promise<void>((resolve) => {
        accepted = res.write(buf.subarray(0, bytesRead), () => resolve());
      });
      next ^= 1;
      if (!accepted) await drained(res);
    }
    res.end();
  } catch {
    res.destroy();
  } finally {
    await reader?.close().catch(() => undefined);
  }
}

/** Resolves when a response or socket can take more bytes, or is gone; leaves no listener behind. */
export function drained(res: EventEmitter & { readonly destroyed: boolean }): Promise<void> {
  // Already gone: its 'close' may have been emitted before anyone listened (a client that left
  // during a file read), and waiting for it would hang this reader and leak its file forever.
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
