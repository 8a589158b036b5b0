// The blob store: blobs by digest (disk-blob-store.ts: files under dataDir/blobs). A blob
// becomes visible only through commit(), which checks the digest first, so the store never
// holds bytes that do not match their name. Readers get a BlobReader, never a location: a
// store on object storage has no file to hand out. Contract: test/contract/blob-store.contract.ts.

/** An open blob to read from: a committed one, or one being written (it then grows). */
export interface BlobReader {
  /**
   * A descriptor of the local file holding the bytes, so the kernel can send from it
   * (sendfile); undefined for a store that is not a local file. Valid until close().
   */
  readonly fd: number | undefined;
  /** Reads into buffer[offset, offset + length) from position; resolves with the bytes read (0 past the current end). */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface BlobInfo {
  readonly digest: string;
  readonly size: number;
  /** Opens the blob; undefined when it is gone (evicted since). An open reader outlives remove(). */
  open(): Promise<BlobReader | undefined>;
}

export interface StoredBlob {
  readonly digest: string;
  readonly size: number;
  /** Epoch ms of the last recorded use (or of the commit). */
  readonly lastUsed: number;
}

/** A blob being written: bytes are kept aside and hashed on the way. */
export interface BlobWriter {
  readonly digest: string;
  /** Bytes appended so far; a reader may read them as soon as this says they are there. */
  readonly written: number;
  /** A reader of the bytes written so far (and of the blob once committed): readers follow a fill with it. */
  openReader(): Promise<BlobReader>;
  /**
   * The name of the local temp file that holds the bytes until commit, for a reader on another
   * thread of this process (BlobStore.openFilling); unset for a store without local files.
   */
  readonly localName?: string;
  /**
   * Appends a chunk; resolves once it is in the file (backpressure: await each call). Without
   * release, the chunk is the caller's again once this settles. With it, the writer may go on
   * reading the chunk after that (the hash thread hashing it while the next chunk is written)
   * and calls release exactly once when it no longer will, also when the write fails.
   */
  write(chunk: Uint8Array, release?: () => void): Promise<void>;
  /**
   * Finishes the file, checks the hash against the digest and renames it into place.
   * Throws DigestMismatchError (and removes the temp file) when the bytes do not match.
   * onVerified runs once the digest matched, before the slower rest (making the bytes durable,
   * the rename, an upload's completion): readers of the fill may then finish, since every byte
   * they send is verified; the blob is cached only when commit resolves.
   */
  commit(onVerified?: () => void): Promise<BlobInfo>;
  /** Drops the temp file; safe to call after commit or twice. */
  abort(): Promise<void>;
}

export interface BlobStore {
  stat(digest: string): Promise<BlobInfo | undefined>;
  createWriter(digest: string): Promise<BlobWriter>;
  /**
   * Removes temp files left by a crash (at start: all of them; while serving, only those idle for
   * olderThanMs, since running fills write theirs). Returns how many were (or would be) removed.
   */
  removeTempFiles(options?: { olderThanMs?: number; dryRun?: boolean }): Promise<number>;
  /**
   * Opens another thread's running write of this store by the name its writer gave
   * (BlobWriter.localName), or the committed blob once the writer renamed it into place;
   * undefined when neither is there (the write failed, or the blob was evicted since). Only a
   * store with local files has it.
   */
  openFilling?(digest: string, localName: string): Promise<BlobReader | undefined>;
  /** Resolves when the store can be read; rejects with why not. */
  ping(): Promise<void>;
  /** Every committed blob with its size and last use, by walking the store (slow on big caches: call rarely). */
  list(): AsyncIterable<StoredBlob>;
  /** Records a use, so that the last use survives restarts (the file's mtime). */
  touch(digest: string, atMs: number): Promise<void>;
  /** Deletes a committed blob; readers that already opened it keep reading. Returns whether it existed. */
  remove(digest: string): Promise<boolean>;
}

/**
 * Bytes [start, end] from a reader, a chunk (a fresh buffer) at a time; stops early where the
 * blob ends before end, so a caller that counts what it got can tell a blob cut short.
 */
export async function* readRange(reader: BlobReader, start: number, end: number, chunkBytes = 1 << 20): AsyncGenerator<Buffer> {
  for (let position = start; position <= end; ) {
    const buf = Buffer.allocUnsafe(Math.min(chunkBytes, end - position + 1));
    const bytesRead = await reader.read(buf, 0, buf.length, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
  }
}

/** The blob's bytes from a reader, a chunk at a time; stops early if the blob is shorter than size. */
export function readChunks(reader: BlobReader, size: number, chunkBytes = 1 << 20): AsyncGenerator<Buffer> {
  return readRange(reader, 0, size - 1, chunkBytes);
}

export class DigestMismatchError extends Error {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string) {
    super(`digest mismatch: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}
