// The blobs replicas share on S3, behind each replica's disk (the L1): a blob missing from the
// disk is looked up here before anyone asks the upstream, and a blob a replica fetched from its
// upstream is published here once its disk holds it verified. Publishing reads the local file
// and hashes it again, so S3 gets exactly the bytes that matched the digest, never a part; it
// runs after the fill, so clients never wait on S3's pace, and S3 away only costs downloads.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { parseDigest } from '../oci/digest.ts';
import { DigestMismatchError, readChunks, type BlobInfo } from './blob-store.ts';
import type { S3BlobStore } from './s3-blob-store.ts';

export type PublishResult = 'published' | 'present' | 'failed';

export class SharedBlobs {
  readonly #store: S3BlobStore;
  readonly #log: Logger;

  /** Presigns a GET of a shared blob (blobs.s3.redirect); unset: blobs always stream through wharf. */
  readonly presign: ((digest: string) => Promise<string>) | undefined;

  // S3 errors are counted where every S3 request is (s3-metrics.ts); here they are logged.
  constructor(deps: { store: S3BlobStore; logger: Logger; presign?: (digest: string) => Promise<string> }) {
    this.presign = deps.presign;
    this.#store = deps.store;
    this.#log = deps.logger;
  }

  /** The shared blob, or undefined when S3 has none or cannot say now (then the upstream is asked). */
  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      return await this.#store.stat(digest);
    } catch (err) {
      this.#log.warn({ digest, err: String(err) }, 'shared blob store did not answer; going on without it');
      return undefined;
    }
  }

  /** The shared blob, or undefined when S3 has none; throws when S3 cannot say (for commands). */
  statOrThrow(digest: string): Promise<BlobInfo | undefined> {
    return this.#store.stat(digest);
  }

  /** Puts a verified local blob on S3 unless it is there already. Never throws: S3 away costs a later download. */
  async publish(local: BlobInfo): Promise<PublishResult> {
    try {
      return await this.publishOrThrow(local);
    } catch (err) {
      this.#log.warn({ digest: local.digest, err: String(err) }, 'cannot publish blob to the shared blob store; other replicas will fetch it themselves');
      return 'failed';
    }
  }

  /** As publish(), but a failure is thrown (for commands, which have no request to go on with). */
  async publishOrThrow(local: BlobInfo): Promise<'published' | 'present'> {
    if (await this.#store.stat(local.digest)) return 'present';
    await this.#upload(local);
    return 'published';
  }

  ping(): Promise<void> {
    return this.#store.ping();
  }

  async #upload(local: BlobInfo): Promise<void> {
    const reader = await local.open();
    if (!reader) throw new Error(`${local.digest} left the local cache before it was published`);
    const { algorithm, hex } = parseDigest(local.digest);
    const hash = createHash(algorithm);
    const upload = this.#store.createUpload(local.digest);
    try {
      let read = 0;
      for await (const chunk of readChunks(reader, local.size)) {
        hash.update(chunk);
        read += chunk.byteLength;
        await upload.write(chunk);
      }
      const actual = hash.digest('hex');
      if (read !== local.size || actual !== hex) throw new DigestMismatchError(local.digest, `${algorithm}:${actual}`);
      await upload.complete();
    } catch (err) {
      await upload.abort();
      throw err;
    } finally {
      await reader.close().catch(() => undefined);
    }
  }
}
