// Writes one blob to S3 through a streaming multipart upload (lib-storage), and spools the same
// bytes to a local temp file that readers following the fill read as they land (S3 shows nothing
// of an upload before it completes). The upload completes only in commit(), after the hash
// matched, so S3 never shows bytes that do not match their name; anything else aborts it.
import { writeFully } from './write-fully.ts';
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { unlink } from 'node:fs/promises';
import { DigestMismatchError, type BlobInfo, type BlobReader, type BlobWriter } from './blob-store.ts';
import { openFileReader } from './disk-blob-store.ts';
import { S3BlobStoreError } from './s3-errors.ts';
import { S3Upload, type S3UploadTarget } from './s3-upload.ts';

export type { S3UploadTarget } from './s3-upload.ts';

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

export class S3BlobWriter implements BlobWriter {
  readonly digest: string;
  /** The local copy followers read (for the store's own tests). */
  readonly spoolPath: string;
  readonly #parts: S3WriterParts;
  readonly #upload: S3Upload;
  #written = 0;
  #state: WriterState = 'open';
  #busy = false;

  constructor(parts: S3WriterParts, target: S3UploadTarget) {
    this.digest = parts.digest;
    this.spoolPath = parts.spoolPath;
    this.#parts = parts;
    this.#upload = new S3Upload(target);
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

  async write(chunk: Uint8Array, release?: () => void): Promise<void> {
    this.#enter('write', release);
    try {
      if (chunk.byteLength === 0) return;
      this.#upload.throwIfFailed();
      // A copy: the upload reads the chunk later, and it must be the very bytes that were hashed
      // even if the caller reuses its buffer.
      const bytes = Buffer.from(chunk);
      const spooled = writeFully(this.#parts.spool, bytes, this.#written);
      this.#parts.hash.update(bytes);
      // Both at once: the upload's wait for S3 overlaps the spool write; both settle before
      // either failure is thrown, so nothing is closed under a write in flight.
      const [spool, upload] = await Promise.allSettled([spooled, this.#upload.write(bytes)]);
      if (spool.status === 'rejected') throw spool.reason;
      if (upload.status === 'rejected') throw upload.reason;
      this.#written += bytes.length;
    } finally {
      // The spool, the hash and the upload read a copy: the chunk is free now.
      release?.();
      this.#busy = false;
    }
  }

  async commit(onVerified?: () => void): Promise<BlobInfo> {
    this.#enter('commit');
    this.#state = 'closed';
    try {
      await this.#parts.spool.close();
      const actual = this.#parts.hash.digest('hex');
      if (actual !== this.#parts.hex) {
        const algorithm = this.digest.slice(0, this.digest.indexOf(':'));
        throw new DigestMismatchError(this.digest, `${algorithm}:${actual}`);
      }
      // Readers follow the spool, which stays readable through its open descriptors.
      onVerified?.();
      await this.#upload.complete();
      this.#state = 'committed';
      return this.#parts.committed(this.#written);
    } catch (err) {
      await this.#upload.abort();
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
    await this.#upload.abort();
    await this.#parts.spool.close().catch(() => undefined);
    await unlink(this.spoolPath).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
  }

  // A method, not an inline test: the state changes across awaits.
  #committed(): boolean {
    return this.#state === 'committed';
  }

  async #openCommitted(): Promise<BlobReader> {
    const reader = await this.#parts.committed(this.#written).open();
    if (!reader) throw new S3BlobStoreError('get', new Error(`${this.digest} is gone from the bucket`));
    return reader;
  }

  /** Writes must be awaited one at a time: the hash depends on their order. */
  #enter(op: string, release?: () => void): void {
    const refused = this.#state !== 'open' ? 'after commit or abort' : this.#busy ? 'while a write is in flight' : undefined;
    if (refused) {
      // A refused write is done with its chunk too.
      release?.();
      throw new Error(`blob writer for ${this.digest}: ${op} ${refused}`);
    }
    this.#busy = true;
  }
}
