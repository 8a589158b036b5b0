// The blob store: content-addressed files on disk, dataDir/blobs/sha256/ab/<hex>.
// A blob becomes visible only through commit(), which checks the digest first, so the
// store never holds bytes that do not match their name. Contract: test/contract/blob-store.contract.ts.

export interface BlobInfo {
  readonly digest: string;
  readonly size: number;
  /** Absolute path of the committed file; open it for reading, never write it. */
  readonly path: string;
}

export interface StoredBlob {
  readonly digest: string;
  readonly size: number;
  /** Epoch ms of the last recorded use (or of the commit). */
  readonly lastUsed: number;
}

/** A blob being written: bytes go to a temp file and are hashed on the way. */
export interface BlobWriter {
  readonly digest: string;
  /** Temp file path; readers may follow it while it grows. */
  readonly tempPath: string;
  /** Bytes appended and flushed to the temp file so far. */
  readonly written: number;
  /** Appends a chunk; resolves once it is in the file (backpressure: await each call). */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Finishes the file, checks the hash against the digest and renames it into place.
   * Throws DigestMismatchError (and removes the temp file) when the bytes do not match.
   */
  commit(): Promise<BlobInfo>;
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
  /** Resolves when the store can be read; rejects with why not. */
  ping(): Promise<void>;
  /** Every committed blob with its size and last use, by walking the store (slow on big caches: call rarely). */
  list(): AsyncIterable<StoredBlob>;
  /** Records a use, so that the last use survives restarts (the file's mtime). */
  touch(digest: string, atMs: number): Promise<void>;
  /** Deletes a committed blob; readers that already opened it keep reading. Returns whether it existed. */
  remove(digest: string): Promise<boolean>;
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
