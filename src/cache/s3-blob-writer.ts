// Writes one blob to S3 through a streaming multipart upload (lib-storage), and spools the same
// bytes to a local temp file that readers following the fill read as they land (S3 shows nothing
// of an upload before it completes). The upload completes only in commit(), after the hash
// matched, so S3 never shows bytes that do not match their name; anything else aborts it.
import { writeFully } from './write-fully.ts';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { DigestMismatchError, type BlobInfo, type BlobReader, type BlobWriter } from './blob-store.ts';
import { openFileReader } from './disk-blob-store.ts';
import { isAlreadyExists, isConditionalConflict, S3BlobStoreError } from './s3-errors.ts';

export interface S3UploadTarget {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  /** Memory held by one upload is about partSize x (queueSize + 1). */
  readonly partSize: number;
  readonly queueSize: number;
  readonly headersTimeoutMs: number;
}

export interface S3WriterParts {
  readonly digest: string;
  readonly hex: string;
  readonly spoolPath: string;
  readonly spool: FileHandle;
  readonly hash: Hash;
  /** The committed blob, as the store describes it. */
  committed(size: number): BlobInfo;
}

type WriterState = 'open' | 'committed' | 'closed';

class UploadAbortedError extends Error {}

export class S3BlobWriter implements BlobWriter {
  readonly digest: string;
  /** The local copy followers read (for the store's own tests). */
  readonly spoolPath: string;
  readonly #parts: S3WriterParts;
  readonly #target: S3UploadTarget;
  readonly #body: PassThrough;
  readonly #upload: Upload;
  /** Settles when the upload does; never rejects (the failure is kept in #failure). */
  readonly #finished: Promise<void>;
  #failure: unknown;
  #written = 0;
  #state: WriterState = 'open';
  #busy = false;

  constructor(parts: S3WriterParts, target: S3UploadTarget) {
    this.digest = parts.digest;
    this.spoolPath = parts.spoolPath;
    this.#parts = parts;
    this.#target = target;
    this.#body = new PassThrough({ highWaterMark: 1 << 20 });
    this.#upload = new Upload({
      client: target.client,
      // If-None-Match goes on the single PUT and on CompleteMultipartUpload (lib-storage passes
      // params to both): where the server supports it, a blob published by another replica is
      // never overwritten. Servers that ignore it (s3rver) overwrite with the same bytes.
      params: { Bucket: target.bucket, Key: target.key, Body: this.#body, IfNoneMatch: '*', ContentType: 'application/octet-stream' },
      partSize: target.partSize,
      queueSize: target.queueSize,
      // Parts of a failed or aborted upload are deleted (AbortMultipartUpload).
      leavePartsOnError: false,
    });
    // The upload starts reading the body now and sends parts as they fill; it completes (a
    // single PUT for a small blob, else CompleteMultipartUpload) only when the body ends.
    this.#finished = this.#upload.done().then(
      () => undefined,
      (err: unknown) => {
        this.#failure = err;
      },
    );
  }

  get written(): number {
    return this.#written;
  }

  async openReader(): Promise<BlobReader> {
    if (this.#committed()) return this.#openCommitted();
    try {
      return await openFileReader(this.spoolPath);
    } catch (err) {
      // The spool goes at the commit; from then on the bytes are in S3.
      if (this.#committed()) return this.#openCommitted();
      throw err;
    }
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#enter('write');
    try {
      if (chunk.byteLength === 0) return;
      this.#throwIfFailed();
      // A copy: the upload reads the chunk later, and it must be the very bytes that were hashed
      // even if the caller reuses its buffer.
      const bytes = Buffer.from(chunk);
      const spooled = writeFully(this.#parts.spool, bytes, this.#written);
      this.#parts.hash.update(bytes);
      // The upload takes bytes at S3's pace: wait for it (bounded memory), or for its failure.
      // The drain listener goes on now: the drain may come while the spool write is awaited.
      const drained = this.#body.write(bytes) ? undefined : once(this.#body, 'drain').catch(() => undefined);
      await spooled;
      if (drained) await Promise.race([drained, this.#finished]);
      this.#throwIfFailed();
      this.#written += bytes.length;
    } finally {
      this.#busy = false;
    }
  }

  async commit(): Promise<BlobInfo> {
    this.#enter('commit');
    this.#state = 'closed';
    try {
      await this.#parts.spool.close();
      const actual = this.#parts.hash.digest('hex');
      if (actual !== this.#parts.hex) {
        await this.#abortUpload();
        const algorithm = this.digest.slice(0, this.digest.indexOf(':'));
        throw new DigestMismatchError(this.digest, `${algorithm}:${actual}`);
      }
      this.#body.end();
      await this.#finished;
      if (this.#failure !== undefined) await this.#publishedElsewhere(this.#failure);
      this.#state = 'committed';
      return this.#parts.committed(this.#written);
    } catch (err) {
      await this.#abortUpload();
      throw err;
    } finally {
      await this.#parts.spool.close().catch(() => undefined);
      await unlink(this.spoolPath).catch(() => undefined);
      this.#busy = false;
    }
  }

  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    await this.#abortUpload();
    await this.#parts.spool.close().catch(() => undefined);
    await unlink(this.spoolPath).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
  }

  /**
   * A failed publish is still a success when the object is there already: 412 says another
   * writer published it first (same digest, same bytes); a 409 (another conditional write of the
   * key in flight) is a success only once that one has landed with the right size.
   */
  async #publishedElsewhere(err: unknown): Promise<void> {
    if (isAlreadyExists(err)) return;
    if (isConditionalConflict(err)) {
      const head = await this.#target.client
        .send(new HeadObjectCommand({ Bucket: this.#target.bucket, Key: this.#target.key }), { abortSignal: AbortSignal.timeout(this.#target.headersTimeoutMs) })
        .catch(() => undefined);
      if (head?.ContentLength === this.#written) return;
    }
    throw new S3BlobStoreError('publish', err);
  }

  /**
   * Stops the upload without completing it: the body is destroyed with an error (never ended,
   * which would complete it), so lib-storage neither sends the single PUT nor completes the
   * multipart upload, and deletes the parts it sent (AbortMultipartUpload) before it settles.
   * Should S3 hang meanwhile, the upload is cancelled outright after the request deadline.
   */
  async #abortUpload(): Promise<void> {
    if (!this.#body.destroyed && !this.#body.writableEnded) this.#body.destroy(new UploadAbortedError('blob writer aborted'));
    let timer: NodeJS.Timeout | undefined;
    const cancelled = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#upload.abort().catch(() => undefined);
        resolve();
      }, this.#target.headersTimeoutMs);
    });
    await Promise.race([this.#finished, cancelled]);
    clearTimeout(timer);
    await this.#finished;
  }

  // A method, not an inline test: the state changes across awaits.
  #committed(): boolean {
    return this.#state === 'committed';
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw new S3BlobStoreError('upload', this.#failure);
  }

  async #openCommitted(): Promise<BlobReader> {
    const reader = await this.#parts.committed(this.#written).open();
    if (!reader) throw new S3BlobStoreError('get', new Error(`${this.digest} is gone from the bucket`));
    return reader;
  }

  /** Writes must be awaited one at a time: the hash depends on their order. */
  #enter(op: string): void {
    if (this.#state !== 'open') throw new Error(`blob writer for ${this.digest}: ${op} after commit or abort`);
    if (this.#busy) throw new Error(`blob writer for ${this.digest}: ${op} while a write is in flight`);
    this.#busy = true;
  }
}
