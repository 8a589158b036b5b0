// A BlobReader over an S3 object: positional reads served from one streaming GetObject, reopened
// with a Range where a read does not follow the last one. There is no descriptor to hand out, so
// the file sender streams these bytes instead of using sendfile.
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import type { BlobReader } from './blob-store.ts';
import { isNotFound, isRangeNotSatisfiable, S3BlobStoreError } from './s3-errors.ts';

// A read this far ahead of the open stream skips bytes on it; farther, a ranged GET is cheaper.
const MAX_SKIP = 1 << 20;

export interface S3ObjectLocation {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  /** Deadline for an answer's headers, and for the next bytes of a body a read waits for. */
  readonly headersTimeoutMs: number;
}

interface OpenBody {
  readonly chunks: AsyncIterator<Buffer>;
  readonly body: Readable;
  /** Position of the next byte the body yields. */
  position: number;
  /** Bytes received but not yet read, from position. */
  pending: Buffer | undefined;
  ended: boolean;
}

/**
 * Opens an object of the given size, or undefined when it does not exist. The whole object is
 * requested at once, so a reader that reads on from the start outlives a remove() (the GET in
 * flight keeps streaming); a read elsewhere needs a new GET, which fails once the object is gone:
 * unlike an open file, S3 has no handle that pins deleted bytes.
 */
export async function openS3Object(at: S3ObjectLocation, size: number): Promise<BlobReader | undefined> {
  const reader = new S3ObjectReader(at, size);
  if (size === 0) return (await exists(at)) ? reader : undefined;
  try {
    await reader.start(0);
  } catch (err) {
    if (err instanceof S3BlobStoreError && isNotFound(err.cause)) return undefined;
    throw err;
  }
  return reader;
}

async function exists(at: S3ObjectLocation): Promise<boolean> {
  try {
    await at.client.send(new HeadObjectCommand({ Bucket: at.bucket, Key: at.key }), { abortSignal: AbortSignal.timeout(at.headersTimeoutMs) });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw new S3BlobStoreError('head', err);
  }
}

class S3ObjectReader implements BlobReader {
  readonly fd = undefined;
  readonly #at: S3ObjectLocation;
  readonly #size: number;
  #open: OpenBody | undefined;
  #closed = false;
  // Reads run one at a time: they share the stream.
  #queue: Promise<unknown> = Promise.resolve();

  constructor(at: S3ObjectLocation, size: number) {
    this.#at = at;
    this.#size = size;
  }

  /** Requests the object from position to its end (never a suffix range: servers disagree on those). */
  async start(position: number): Promise<void> {
    this.#drop();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('no answer within the deadline')), this.#at.headersTimeoutMs);
    let out;
    try {
      out = await this.#at.client.send(
        new GetObjectCommand({ Bucket: this.#at.bucket, Key: this.#at.key, Range: `bytes=${position}-` }),
        { abortSignal: controller.signal },
      );
    } catch (err) {
      throw new S3BlobStoreError('get', err);
    } finally {
      clearTimeout(timer);
    }
    const body = out.Body as Readable | undefined;
    if (!body) throw new S3BlobStoreError('get', new Error('answer without a body'));
    if (this.#closed) {
      body.destroy();
      return;
    }
    this.#open = { body, chunks: body[Symbol.asyncIterator]() as AsyncIterator<Buffer>, position, pending: undefined, ended: false };
  }

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    const result = this.#queue.then(() => this.#read(buffer, offset, length, position));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    if (this.#closed) throw new Error('read after close');
    if (length <= 0 || position >= this.#size) return 0;
    const open = this.#open;
    if (!open || position < open.position || position - open.position > MAX_SKIP || (open.ended && !open.pending)) {
      try {
        await this.start(position);
      } catch (err) {
        if (err instanceof S3BlobStoreError && isRangeNotSatisfiable(err.cause)) return 0;
        throw err;
      }
    }
    const body = this.#open;
    if (!body) throw new Error('read after close');
    let filled = 0;
    while (filled < length) {
      const chunk = await this.#next(body);
      if (!chunk) break;
      if (body.position < position) {
        // Skipping ahead on the open stream.
        const skip = Math.min(position - body.position, chunk.length);
        body.position += skip;
        body.pending = skip < chunk.length ? chunk.subarray(skip) : undefined;
        continue;
      }
      const n = Math.min(chunk.length, length - filled);
      chunk.copy(buffer, offset + filled, 0, n);
      filled += n;
      body.position += n;
      body.pending = n < chunk.length ? chunk.subarray(n) : undefined;
    }
    return filled;
  }

  /** The next bytes at the body's position, or undefined at its end. */
  async #next(body: OpenBody): Promise<Buffer | undefined> {
    if (body.pending) return body.pending;
    if (body.ended) return undefined;
    let step: IteratorResult<Buffer>;
    // An idle deadline only while this reader waits for bytes: a client slow to take them pauses
    // the stream without any read waiting, and must not have it cut.
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no bytes within ${this.#at.headersTimeoutMs} ms`)), this.#at.headersTimeoutMs);
    });
    try {
      step = await Promise.race([body.chunks.next(), stalled]);
    } catch (err) {
      body.ended = true;
      body.body.destroy();
      throw new S3BlobStoreError('get', err);
    } finally {
      clearTimeout(timer);
    }
    const { value, done } = step;
    if (done) {
      body.ended = true;
      return undefined;
    }
    body.pending = value;
    return value;
  }

  #drop(): void {
    this.#open?.body.destroy();
    this.#open = undefined;
  }

  // The stream goes first, so a read waiting for bytes ends now rather than at its deadline.
  async close(): Promise<void> {
    this.#closed = true;
    this.#drop();
    await this.#queue;
    this.#drop();
  }
}
