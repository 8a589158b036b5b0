// BlobStore on the local filesystem: dataDir/blobs/<alg>/<first 2 hex>/<hex>, written through
// temp files in dataDir/blobs/tmp (same filesystem, so the final rename is atomic).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, rename, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseDigest } from '../oci/digest.ts';
import { DigestMismatchError, type BlobInfo, type BlobReader, type BlobStore, type BlobWriter } from './blob-store.ts';
import { removeIdleEntries } from './temp-files.ts';
import { writeFully } from './write-fully.ts';
import { mainThreadHasher, offloadedHasher, type ChunkHasher, type WriteTarget } from './chunk-hasher.ts';
import type { HashThread } from './hash-offload.ts';

/** Stats list() keeps in flight: enough to keep the thread pool busy. */
const LIST_STATS_IN_FLIGHT = 32;

export interface DiskBlobStoreOptions {
  /**
   * fdatasync each blob before renaming it into place (default true). Without it a power loss
   * can leave a renamed file with missing data, i.e. bytes that do not match their name.
   */
  readonly fsync?: boolean;
  /** Where blob bytes are hashed while they are written; unset: on the calling thread. */
  readonly hashOffload?: HashThread | undefined;
}

export function createDiskBlobStore(dataDir: string, opts: DiskBlobStoreOptions = {}): BlobStore {
  const root = join(resolve(dataDir), 'blobs');
  const tmpDir = join(root, 'tmp');
  const fsync = opts.fsync ?? true;

  function finalPath(algorithm: string, hex: string): string {
    return join(root, algorithm, hex.slice(0, 2), hex);
  }

  return {
    async stat(digest) {
      const { algorithm, hex } = parseDigest(digest);
      const path = finalPath(algorithm, hex);
      try {
        const st = await stat(path);
        return st.isFile() ? committedBlob(digest, st.size, path) : undefined;
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw err;
      }
    },

    async createWriter(digest) {
      const { algorithm, hex } = parseDigest(digest);
      const path = finalPath(algorithm, hex);
      const tempPath = join(tmpDir, tempName(algorithm, hex, randomBytes(TEMP_SUFFIX_BYTES).toString('hex')));
      // The hasher first: one that cannot be had (a stopped hash thread) leaves no temp file.
      const hasher = opts.hashOffload ? offloadedHasher(opts.hashOffload, algorithm) : mainThreadHasher(algorithm);
      let handle: FileHandle;
      try {
        handle = await open(tempPath, 'wx').catch(async (err: unknown) => {
          if (!isMissing(err)) throw err;
          await mkdir(tmpDir, { recursive: true });
          return open(tempPath, 'wx');
        });
      } catch (err) {
        hasher.drop();
        throw err;
      }
      return new DiskBlobWriter(digest, hex, tempPath, path, handle, hasher, fsync);
    },

    async openFilling(digest, localName) {
      const { algorithm, hex } = parseDigest(digest);
      // The name comes from another thread, over loopback: only a writer's name for this very
      // digest is opened, never a path of the sender's choosing.
      if (!isTempName(localName, algorithm, hex)) return undefined;
      const missingIsUndefined = (err: unknown) => (isMissing(err) ? undefined : Promise.reject(err));
      // Gone from tmp: renamed into place (committed), or removed (failed); the final path tells which.
      return openFileReader(join(tmpDir, localName)).catch((err: unknown) =>
        isMissing(err) ? openFileReader(finalPath(algorithm, hex)).catch(missingIsUndefined) : Promise.reject(err),
      );
    },

    async removeTempFiles(options = {}) {
      return removeIdleEntries(tmpDir, options);
    },

    async ping() {
      await mkdir(root, { recursive: true }).catch(() => undefined);
      await access(root, constants.R_OK);
    },

    async *list() {
      for (const algorithm of await readdirOrEmpty(root)) {
        if (algorithm === 'tmp') continue;
        for (const shard of await readdirOrEmpty(join(root, algorithm))) {
          const names = await readdirOrEmpty(join(root, algorithm, shard));
          // Several stats in flight: one at a time, the index of 100 000 blobs took ~5 s to read
          // at start, mostly waiting on the thread pool (bench:scale).
          for (let i = 0; i < names.length; i += LIST_STATS_IN_FLIGHT) {
            const batch = names.slice(i, i + LIST_STATS_IN_FLIGHT);
            const stats = await Promise.all(batch.map((hex) => stat(join(root, algorithm, shard, hex)).catch(() => undefined)));
            for (const [j, st] of stats.entries()) {
              if (st?.isFile()) yield { digest: `${algorithm}:${batch[j]}`, size: st.size, lastUsed: st.mtimeMs };
            }
          }
        }
      }
    },

    async touch(digest, atMs) {
      const { algorithm, hex } = parseDigest(digest);
      const when = new Date(atMs);
      await utimes(finalPath(algorithm, hex), when, when).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
      });
    },

    async remove(digest) {
      const { algorithm, hex } = parseDigest(digest);
      try {
        await unlink(finalPath(algorithm, hex));
        return true;
      } catch (err) {
        if (isMissing(err)) return false;
        throw err;
      }
    },
  };
}

const TEMP_SUFFIX_BYTES = 6;
const TEMP_SUFFIX = new RegExp(`^[0-9a-f]{${TEMP_SUFFIX_BYTES * 2}}$`);

// The digest in the name helps whoever looks at a leftover; the random part keeps concurrent
// writers of one digest apart.
function tempName(algorithm: string, hex: string, suffix: string): string {
  return `${algorithm}-${hex}-${suffix}`;
}

function isTempName(name: string, algorithm: string, hex: string): boolean {
  const prefix = tempName(algorithm, hex, '');
  return name.startsWith(prefix) && TEMP_SUFFIX.test(name.slice(prefix.length));
}

function committedBlob(digest: string, size: number, path: string): BlobInfo {
  return { digest, size, open: () => openFileReader(path).catch((err: unknown) => (isMissing(err) ? undefined : Promise.reject(err))) };
}

/** A reader over a local file; exported for tests that send arbitrary files. */
export async function openFileReader(path: string): Promise<BlobReader> {
  const handle = await open(path, 'r');
  return {
    fd: handle.fd,
    read: async (buffer, offset, length, position) => (await handle.read(buffer, offset, length, position)).bytesRead,
    close: () => handle.close(),
  };
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

type WriterState = 'open' | 'committed' | 'closed';

export class DiskBlobWriter implements BlobWriter {
  readonly digest: string;
  /** Where the bytes are until commit (for the disk store's own tests). */
  readonly tempPath: string;
  readonly #hex: string;
  readonly #finalPath: string;
  readonly #handle: FileHandle;
  readonly #hasher: ChunkHasher;
  readonly #fsync: boolean;
  /** The temp file as the hasher writes it: its descriptor, and a positioned write of every byte. */
  readonly #target: WriteTarget;
  #written = 0;
  #state: WriterState = 'open';
  #busy = false;
  /** The write under way: the hash thread may be writing to the descriptor, so it stays open until this settles. */
  #writing: Promise<void> | undefined;

  constructor(digest: string, hex: string, tempPath: string, finalPath: string, handle: FileHandle, hasher: ChunkHasher, fsync: boolean) {
    this.digest = digest;
    this.#hex = hex;
    this.tempPath = tempPath;
    this.#finalPath = finalPath;
    this.#handle = handle;
    this.#hasher = hasher;
    this.#fsync = fsync;
    this.#target = { fd: handle.fd, write: (bytes, position) => writeFully(handle, bytes, position) };
  }

  get written(): number {
    return this.#written;
  }

  get localName(): string {
    return basename(this.tempPath);
  }

  // An open reader keeps working across the rename into place; one opened after it opens the
  // committed file instead.
  async openReader(): Promise<BlobReader> {
    try {
      return await openFileReader(this.tempPath);
    } catch (err) {
      // Mid-commit the rename may already have happened.
      if (this.#state !== 'open') return openFileReader(this.#finalPath);
      throw err;
    }
  }

  async write(chunk: Uint8Array, release?: () => void): Promise<void> {
    this.#enter('write', release);
    try {
      const length = chunk.byteLength;
      if (length === 0) {
        release?.();
        return;
      }
      this.#writing = this.#hasher.writeAndHash(chunk, this.#written, this.#target, release);
      await this.#writing;
      // Only now may readers pread these bytes.
      this.#written += length;
    } finally {
      this.#writing = undefined;
      this.#busy = false;
    }
  }

  async commit(onVerified?: () => void): Promise<BlobInfo> {
    this.#enter('commit');
    this.#state = 'closed';
    try {
      const actual = await this.#hasher.digest();
      if (actual !== this.#hex) {
        // The catch below removes the temp file.
        const algorithm = this.digest.slice(0, this.digest.indexOf(':'));
        throw new DigestMismatchError(this.digest, `${algorithm}:${actual}`);
      }
      // Readers may send the last byte now: what they send is verified. Durability is the
      // cache's concern, not theirs, so they do not wait for the datasync (a 256 MiB blob's
      // datasync took longer than its download here).
      onVerified?.();
      if (this.#fsync) await this.#handle.datasync();
      await this.#handle.close();
      await this.#place();
      this.#state = 'committed';
      return committedBlob(this.digest, this.#written, this.#finalPath);
    } catch (err) {
      await this.#handle.close().catch(() => undefined);
      await unlink(this.tempPath).catch(() => undefined);
      throw err;
    } finally {
      this.#busy = false;
    }
  }

  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    this.#hasher.drop();
    // Closed under a write on another thread, the descriptor's number could be reused by the
    // next file opened, and the write would land there.
    await this.#writing?.catch(() => undefined);
    await this.#handle.close().catch(() => undefined);
    await unlink(this.tempPath).catch((err: unknown) => {
      if (!isMissing(err)) throw err;
    });
  }

  /** Renames the verified temp file into place; an already present blob wins (same bytes). */
  async #place(): Promise<void> {
    const present = await stat(this.#finalPath).then((st) => st.isFile(), () => false);
    if (present) {
      await unlink(this.tempPath);
      return;
    }
    try {
      await rename(this.tempPath, this.#finalPath);
    } catch (err) {
      if (!isMissing(err)) throw err;
      await mkdir(dirname(this.#finalPath), { recursive: true });
      await rename(this.tempPath, this.#finalPath);
    }
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

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
