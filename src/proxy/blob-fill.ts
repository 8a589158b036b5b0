// One upstream download of one blob, shared by every request for that digest. The bytes go to a
// temp file (hashed on the way) and readers follow the file as it grows, so each client streams
// at upstream speed and the cache costs no second download. The last byte is held back from
// readers until the digest is verified: a corrupt fill can only ever reach clients as a cut
// stream, never as a complete wrong body. Once verified, readers may finish while the writer
// makes the blob durable and renames it into place (commit); only then is it complete, i.e.
// cached.
import type { BlobInfo, BlobReader, BlobWriter } from '../cache/blob-store.ts';
import { bodyBatches } from './body-batches.ts';
import { rateFloor, type MinRate, type SlowBodyError } from './rate-floor.ts';
import { FillSignal, type FillState } from './fill-signal.ts';

export type { FillState } from './fill-signal.ts';

export class BlobFill {
  readonly digest: string;
  /** From the upstream's Content-Length; undefined when it sent none. */
  readonly size: number | undefined;
  /** Opens the bytes written so far (through the store's writer): readers follow the fill with it. */
  readonly openReader: () => Promise<BlobReader>;
  /** The writer's local temp file (BlobWriter.localName): a hit thread can follow it itself. */
  readonly localName: string | undefined;
  #written = 0;
  #verified = false;
  #info: BlobInfo | undefined;
  readonly #signal = new FillSignal();

  constructor(digest: string, size: number | undefined, openReader: () => Promise<BlobReader>, localName?: string) {
    this.digest = digest;
    this.size = size;
    this.openReader = openReader;
    this.localName = localName;
  }

  get state(): FillState {
    return this.#signal.state;
  }

  get error(): Error | undefined {
    return this.#signal.error;
  }

  /** The committed blob, once the fill is complete. */
  get info(): BlobInfo | undefined {
    return this.#info;
  }

  get written(): number {
    return this.#written;
  }

  /** Every byte is in and its digest matched: readers know the end and may send it all. */
  get ended(): boolean {
    const state = this.#signal.state;
    return state === 'complete' || (this.#verified && state === 'filling');
  }

  /** How many bytes readers may send now. */
  get readable(): number {
    if (this.ended) return this.#written;
    return Math.max(0, this.#written - 1);
  }

  /** Resolves at the next progress, completion or failure. */
  changed(): Promise<void> {
    return this.#signal.changed();
  }

  progress(written: number): void {
    this.#written = written;
    this.#signal.notify();
  }

  /** The digest of all written bytes matched; the commit (durability, rename) goes on. */
  verified(): void {
    if (this.#signal.state !== 'filling') return;
    this.#verified = true;
    this.#signal.notify();
  }

  complete(info: BlobInfo): void {
    this.#info = info;
    this.#written = info.size;
    this.#signal.complete();
  }

  fail(error: Error): void {
    this.#signal.fail(error);
  }
}

export class ShortBodyError extends Error {
  constructor(expected: number, got: number) {
    super(`upstream body ended after ${got} of ${expected} bytes`);
    this.name = 'ShortBodyError';
  }
}

/** Bytes received while a disk write is in flight before the body is paused (backpressure). */
const MAX_QUEUED_BYTES = 4 << 20;

/** An upstream body; destroy, when it has one, is how a body too slow is cut at once. */
export type FillBody = AsyncIterable<Uint8Array> & { destroy?(error?: Error): unknown };

/**
 * Pumps the upstream body into the writer, publishing progress. Resolves (never rejects) when
 * the fill is complete or failed; the outcome is on the fill. With a minimum rate, a body that
 * brings fewer bytes than that in a window is cut and the fill fails with a SlowBodyError.
 *
 * Chunks that arrive while a write is in flight are gathered and written together, in one
 * staging buffer (body-batches.ts): one write per network chunk (64 KiB) spent most of a fill
 * waiting on the thread pool.
 */
export async function runFill(fill: BlobFill, writer: BlobWriter, body: FillBody, options: { minRate?: MinRate } = {}): Promise<void> {
  let tooSlow: SlowBodyError | undefined;
  const floor =
    options.minRate &&
    rateFloor(options.minRate, (err) => {
      tooSlow = err;
      body.destroy?.(err);
    });
  // Our disk holding the body back is not the upstream being slow.
  const hooks = floor ? { received: (n: number) => floor.received(n), paused: () => floor.pause(), resumed: () => floor.resume() } : {};
  try {
    for await (const batch of bodyBatches(body, MAX_QUEUED_BYTES, hooks)) {
      if (tooSlow) throw tooSlow;
      // The writer releases the batch once done with it, which may be after this write.
      await writer.write(batch.bytes, batch.release);
      fill.progress(writer.written);
    }
    floor?.stop();
    if (tooSlow) throw tooSlow;
    if (fill.size !== undefined && writer.written !== fill.size) throw new ShortBodyError(fill.size, writer.written);
    fill.complete(await writer.commit(() => fill.verified()));
  } catch (err) {
    floor?.stop();
    await writer.abort().catch(() => undefined);
    // A cut body may surface as the stream's own error: the cut's reason is the one that counts.
    const error = tooSlow ?? err;
    fill.fail(error instanceof Error ? error : new Error(String(error)));
  }
}
