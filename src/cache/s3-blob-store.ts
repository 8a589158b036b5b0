// BlobStore on S3-compatible object storage: objects at <prefix>blobs/<alg>/<hex>, written by
// s3-blob-writer.ts (streaming multipart upload, completed only after the digest matched, with a
// local spool that readers of a running fill follow) and read by s3-object-reader.ts (streaming
// ranged GETs). Where S3 cannot do what a disk can, the methods below say so.
import {
  DeleteObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isSupportedDigest, parseDigest } from '../oci/digest.ts';
import type { BlobInfo, BlobStore, StoredBlob } from './blob-store.ts';
import { removeIdleEntries } from './temp-files.ts';
import { S3BlobWriter } from './s3-blob-writer.ts';
import { S3Upload } from './s3-upload.ts';
import { isNotFound, S3BlobStoreError } from './s3-errors.ts';
import { openS3Object, type S3ObjectLocation } from './s3-object-reader.ts';

export interface S3BlobStoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** Put before every key, e.g. 'wharf/' (default none). */
  readonly prefix?: string;
  /** A local directory for the spools of running fills (each fill's bytes, until it commits). */
  readonly spoolDir: string;
  /** Multipart part size, at least 5 MiB (S3's minimum; default 8 MiB: 80 GiB at 10 000 parts). */
  readonly partSize?: number;
  /** Parts in flight per upload (default 2). */
  readonly queueSize?: number;
  /** Deadline for an S3 answer's headers (default 10 s); bodies stream at the reader's pace. */
  readonly requestTimeoutMs?: number;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
// 13 digits hold every epoch millisecond until the year 2286, so markers sort by time.
const USE_DIGITS = 13;

export interface S3BlobStore extends BlobStore {
  /**
   * An upload of the digest's object without spool or hash: for a caller that verified the bytes
   * itself (shared-blobs.ts publishes blobs the local disk holds). It completes only when told.
   */
  createUpload(digest: string): S3Upload;
}

export function createS3BlobStore(opts: S3BlobStoreOptions): S3BlobStore {
  const { client, bucket } = opts;
  const prefix = opts.prefix ?? '';
  const spoolDir = resolve(opts.spoolDir);
  const partSize = opts.partSize ?? 8 * 1024 * 1024;
  const queueSize = opts.queueSize ?? 2;
  const timeoutMs = opts.requestTimeoutMs ?? 10_000;
  if (partSize < MIN_PART_SIZE) throw new RangeError(`partSize ${partSize} is below S3's minimum part size of ${MIN_PART_SIZE}`);
  const blobsPrefix = `${prefix}blobs/`;
  const usesPrefix = `${prefix}uses/`;

  const blobKey = (algorithm: string, hex: string) => `${blobsPrefix}${algorithm}/${hex}`;
  const location = (key: string): S3ObjectLocation => ({ client, bucket, key, headersTimeoutMs: timeoutMs });
  const committed = (digest: string, key: string, size: number): BlobInfo => ({ digest, size, open: () => openS3Object(location(key), size) });
  const deadline = () => ({ abortSignal: AbortSignal.timeout(timeoutMs) });

  async function head(key: string): Promise<{ size: number; lastModified: number } | undefined> {
    try {
      const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), deadline());
      return { size: out.ContentLength ?? 0, lastModified: out.LastModified?.getTime() ?? Date.now() };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new S3BlobStoreError('head', err);
    }
  }

  async function deleteKey(key: string): Promise<void> {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), deadline()).catch((err: unknown) => {
      if (!isNotFound(err)) throw new S3BlobStoreError('delete', err);
    });
  }

  async function* keys(under: string): AsyncGenerator<{ key: string; size: number; lastModified: number }> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: under, ContinuationToken: token }), deadline());
      } catch (err) {
        throw new S3BlobStoreError('list', err);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key) yield { key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** The digest named by a key under `under` (`<alg>/<hex>`, maybe followed by `/<more>`). */
  function digestOfKey(key: string, under: string): string | undefined {
    const [algorithm, hex] = key.slice(under.length).split('/');
    const digest = `${algorithm}:${hex}`;
    return isSupportedDigest(digest) ? digest : undefined;
  }

  async function uses(digest: string): Promise<string[]> {
    const { algorithm, hex } = parseDigest(digest);
    const found: string[] = [];
    for await (const o of keys(`${usesPrefix}${algorithm}/${hex}/`)) found.push(o.key);
    return found.sort();
  }

  return {
    async stat(digest) {
      const { algorithm, hex } = parseDigest(digest);
      const key = blobKey(algorithm, hex);
      const found = await head(key);
      return found && committed(digest, key, found.size);
    },

    async createWriter(digest) {
      const { algorithm, hex } = parseDigest(digest);
      // The digest in the name helps whoever looks at a leftover; the random part keeps
      // concurrent writers of one digest apart.
      const spoolPath = join(spoolDir, `${algorithm}-${hex}-${randomBytes(6).toString('hex')}`);
      let spool: FileHandle;
      try {
        spool = await open(spoolPath, 'wx');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await mkdir(spoolDir, { recursive: true });
        spool = await open(spoolPath, 'wx');
      }
      const key = blobKey(algorithm, hex);
      return new S3BlobWriter(
        { digest, hex, spoolPath, spool, hash: createHash(algorithm), committed: (size) => committed(digest, key, size) },
        { client, bucket, key, partSize, queueSize, headersTimeoutMs: timeoutMs },
      );
    },

    createUpload(digest) {
      const { algorithm, hex } = parseDigest(digest);
      return new S3Upload({ client, bucket, key: blobKey(algorithm, hex), partSize, queueSize, headersTimeoutMs: timeoutMs });
    },

    // Only the local spools. Uploads a crash left open in S3 are invisible (never completed) but
    // keep their parts; a bucket lifecycle rule (AbortIncompleteMultipartUpload after a day) is
    // what removes them, since one replica cannot tell another's running upload from a leftover.
    async removeTempFiles(options = {}) {
      return removeIdleEntries(spoolDir, options);
    },

    async ping() {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }), deadline());
      } catch (err) {
        throw new S3BlobStoreError('head bucket', err);
      }
    },

    // Two listings: the use markers first (small, one per blob at most, held in memory like the
    // index that calls this), then the blobs. Last use is the newer of the marker and the
    // object's own time (its upload).
    async *list(): AsyncGenerator<StoredBlob> {
      const lastUse = new Map<string, number>();
      for await (const o of keys(usesPrefix)) {
        const digest = digestOfKey(o.key, usesPrefix);
        const at = Number(o.key.slice(o.key.lastIndexOf('/') + 1));
        if (digest && Number.isFinite(at)) lastUse.set(digest, Math.max(at, lastUse.get(digest) ?? 0));
      }
      for await (const o of keys(blobsPrefix)) {
        const digest = digestOfKey(o.key, blobsPrefix);
        if (!digest || o.key !== blobKey(...(digest.split(':') as [string, string]))) continue;
        yield { digest, size: o.size, lastUsed: lastUse.get(digest) ?? o.lastModified };
      }
    },

    // S3 cannot set an object's time (a self-copy would rewrite the whole blob and still get
    // "now"), so a use is an empty marker object whose key holds the time:
    // <prefix>uses/<alg>/<hex>/<epoch ms>; older markers of the blob are deleted.
    async touch(digest, atMs) {
      const { algorithm, hex } = parseDigest(digest);
      if (!(await head(blobKey(algorithm, hex)))) return; // gone: like a file's utimes, nothing to do
      const marker = `${usesPrefix}${algorithm}/${hex}/${String(Math.max(0, Math.round(atMs))).padStart(USE_DIGITS, '0')}`;
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: marker, Body: new Uint8Array(0), ContentLength: 0 }), deadline());
      } catch (err) {
        throw new S3BlobStoreError('put', err);
      }
      for (const old of await uses(digest)) if (old !== marker) await deleteKey(old);
    },

    // An open reader keeps the bytes its GET is streaming, not the object: see openS3Object.
    async remove(digest) {
      const { algorithm, hex } = parseDigest(digest);
      const key = blobKey(algorithm, hex);
      // S3 deletes answer 204 whether or not the key existed: ask first.
      const existed = (await head(key)) !== undefined;
      if (existed) await deleteKey(key);
      for (const marker of await uses(digest)) await deleteKey(marker);
      return existed;
    },
  };
}
