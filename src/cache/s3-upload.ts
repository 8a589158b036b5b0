// One streaming upload of a blob's bytes to S3 (lib-storage: a single PUT for a small blob, else
// a multipart upload), completed only when the caller says the bytes matched their digest, so S3
// never shows an object whose bytes do not match its name. Anything else aborts it. It checks no
// hash itself: its callers (s3-blob-writer.ts, tiered-blob-writer.ts) hash what they hand it.
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
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

class UploadAbortedError extends Error {}

export class S3Upload {
  readonly #target: S3UploadTarget;
  readonly #body: PassThrough;
  readonly #upload: Upload;
  /** Settles when the upload does; never rejects (the failure is kept in #failure). */
  readonly #finished: Promise<void>;
  #failure: unknown;
  #sent = 0;

  constructor(target: S3UploadTarget) {
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
    // The upload starts reading the body now and sends parts as they fill; it completes only
    // when the body ends.
    this.#finished = this.#upload.done().then(
      () => undefined,
      (err: unknown) => {
        this.#failure = err;
      },
    );
  }

  /**
   * Hands bytes to the upload, which takes them at S3's pace: resolves once it has room again
   * (bounded memory), or throws when the upload failed. The bytes must not change afterwards.
   */
  async write(bytes: Buffer): Promise<void> {
    this.throwIfFailed();
    if (bytes.byteLength === 0) return;
    const drained = this.#body.write(bytes) ? undefined : once(this.#body, 'drain').catch(() => undefined);
    this.#sent += bytes.byteLength;
    if (drained) await Promise.race([drained, this.#finished]);
    this.throwIfFailed();
  }

  throwIfFailed(): void {
    if (this.#failure !== undefined) throw new S3BlobStoreError('upload', this.#failure);
  }

  /** Publishes the object: call only once the bytes were verified. Throws (and aborts) when it cannot. */
  async complete(): Promise<void> {
    try {
      this.#body.end();
      await this.#finished;
      if (this.#failure !== undefined) await this.#publishedElsewhere(this.#failure);
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /**
   * Stops the upload without completing it: the body is destroyed with an error (never ended,
   * which would complete it), so lib-storage neither sends the single PUT nor completes the
   * multipart upload, and deletes the parts it sent (AbortMultipartUpload) before it settles.
   * Should S3 hang meanwhile, the upload is cancelled outright after the request deadline.
   */
  async abort(): Promise<void> {
    if (!this.#body.destroyed && !this.#body.writableEnded) this.#body.destroy(new UploadAbortedError('blob upload aborted'));
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
      if (head?.ContentLength === this.#sent) return;
    }
    throw new S3BlobStoreError('publish', err);
  }
}
