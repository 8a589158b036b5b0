// How a blob writer hashes the bytes it writes, overlapped with the write itself: on the main
// thread while the thread pool writes (the fallback), or on the hash thread (hash-offload.ts)
// while the pool writes and the main thread goes back to receiving. Either way the digest
// covers exactly the bytes written, in order.
import { createHash } from 'node:crypto';
import type { HashOffload, OffloadedHash } from './hash-offload.ts';

/** Writes chunks at a position; resolves once every byte is in the file. */
export type WriteAt = (chunks: readonly Uint8Array[], position: number) => Promise<void>;

export interface ChunkHasher {
  /** Writes the chunks at position with write and hashes them; settles when both have. */
  writeAndHash(chunks: readonly Uint8Array[], length: number, position: number, write: WriteAt): Promise<void>;
  digest(): Promise<string>;
  /** Forgets the hash (an aborted write). */
  drop(): void;
}

export function mainThreadHasher(algorithm: string): ChunkHasher {
  const hash = createHash(algorithm);
  return {
    async writeAndHash(chunks, _length, position, write) {
      // Started first so hashing on this thread overlaps the I/O on the pool.
      const written = write(chunks, position);
      for (const chunk of chunks) hash.update(chunk);
      await written;
    },
    digest: async () => hash.digest('hex'),
    drop: () => undefined,
  };
}

// The shared buffer a writer copies each batch into, grown to the batches it meets: a 1 KiB
// config blob does not cost megabytes. Its cap bounds a fill's memory beside the queue of
// received chunks (blob-fill.ts).
const SLOT_MIN = 256 << 10;
const SLOT_MAX = 5 << 20;

/**
 * Hashing on the hash thread. A batch already in shared memory (a fill's staging buffer,
 * body-batches.ts) is written and hashed where it is; any other is copied once into the
 * writer's own shared buffer first. The pool writes from it while the hash thread hashes it.
 */
export function offloadedHasher(offload: HashOffload, algorithm: string): ChunkHasher {
  const hash: OffloadedHash = offload.hash(algorithm);
  let shared: SharedArrayBuffer | undefined;
  let slot: Buffer | undefined;
  const room = (wanted: number): Buffer => {
    if (!slot || (slot.length < wanted && slot.length < SLOT_MAX)) {
      let size = SLOT_MIN;
      while (size < wanted && size < SLOT_MAX) size *= 2;
      shared = new SharedArrayBuffer(Math.min(size, SLOT_MAX));
      slot = Buffer.from(shared);
    }
    return slot;
  };
  return {
    async writeAndHash(chunks, length, position, write) {
      const only = chunks.length === 1 ? chunks[0]! : undefined;
      if (only && only.buffer instanceof SharedArrayBuffer) {
        await both(write(chunks, position), hash.update(only.buffer, only.byteOffset, only.byteLength));
        return;
      }
      const buf = room(length);
      let filled = 0;
      const flush = async () => {
        const piece = buf.subarray(0, filled);
        await both(write([piece], position), hash.update(shared!, 0, filled));
        position += filled;
        filled = 0;
      };
      for (const chunk of chunks) {
        for (let from = 0; from < chunk.byteLength; ) {
          const n = Math.min(chunk.byteLength - from, buf.length - filled);
          buf.set(chunk.subarray(from, from + n), filled);
          filled += n;
          from += n;
          if (filled === buf.length) await flush();
        }
      }
      if (filled > 0) await flush();
    },
    digest: () => hash.digest(),
    drop: () => hash.drop(),
  };
}

/** Both settle before either failure is thrown: the bytes are not reused under either. */
async function both(write: Promise<void>, hash: Promise<void>): Promise<void> {
  const [wrote, hashed] = await Promise.allSettled([write, hash]);
  if (wrote.status === 'rejected') throw wrote.reason;
  if (hashed.status === 'rejected') throw hashed.reason;
}
