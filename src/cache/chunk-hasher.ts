// How a blob writer hashes the bytes it writes, overlapped with the write itself: on the main
// thread while the thread pool writes (the fallback), or on a hash thread (native-hash-thread.ts,
// or the Worker of hash-offload.ts) while the pool writes and the main thread goes back to
// receiving; there a fill's batch may still be hashed while the next is written. Either way the
// digest covers exactly the bytes written, in order.
import { createHash } from 'node:crypto';
import type { HashThread, OffloadedHash } from './hash-offload.ts';

/** Writes bytes at a position; resolves once every byte is in the file. */
export type WriteAt = (bytes: Uint8Array, position: number) => Promise<void>;

export interface ChunkHasher {
  /**
   * Writes the chunk at position with write and hashes it. Settles when both have; or, given
   * release, once the write has, calling release when the hash is done with the chunk too (a
   * hash that failed fails digest()).
   */
  writeAndHash(chunk: Uint8Array, position: number, write: WriteAt, release?: () => void): Promise<void>;
  /** The digest of every chunk, once all of them are hashed. */
  digest(): Promise<string>;
  /** Forgets the hash (an aborted write). */
  drop(): void;
}

export function mainThreadHasher(algorithm: string): ChunkHasher {
  const hash = createHash(algorithm);
  return {
    async writeAndHash(chunk, position, write, release) {
      // Started first so hashing on this thread overlaps the I/O on the pool.
      const written = write(chunk, position);
      hash.update(chunk);
      try {
        await written;
      } finally {
        release?.();
      }
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
export function offloadedHasher(offload: HashThread, algorithm: string): ChunkHasher {
  const hash: OffloadedHash = offload.hash(algorithm);
  // Updates the hash thread has not answered yet (the thread takes them in order); the first
  // failure among them, which digest() throws.
  const lagging = new Set<Promise<void>>();
  let lagFailure: unknown;
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
    async writeAndHash(chunk, position, write, release) {
      if (lagFailure !== undefined) {
        release?.();
        throw lagFailure;
      }
      if (chunk.buffer instanceof SharedArrayBuffer && release) {
        // The hash may lag: the next chunk is written while the thread still hashes this one.
        const hashed = hash.update(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        const written = write(chunk, position);
        const settled: Promise<void> = Promise.allSettled([written, hashed]).then(([, h]) => {
          lagging.delete(settled);
          if (h.status === 'rejected') lagFailure ??= h.reason;
          release();
        });
        lagging.add(settled);
        await written;
        return;
      }
      try {
        if (chunk.buffer instanceof SharedArrayBuffer) {
          await both(write(chunk, position), hash.update(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          return;
        }
        // Through the writer's own shared buffer, in pieces of its size.
        const buf = room(chunk.byteLength);
        for (let from = 0; from < chunk.byteLength; ) {
          const n = Math.min(chunk.byteLength - from, buf.length);
          buf.set(chunk.subarray(from, from + n), 0);
          await both(write(buf.subarray(0, n), position + from), hash.update(shared!, 0, n));
          from += n;
        }
      } finally {
        release?.();
      }
    },
    async digest() {
      await Promise.all(lagging);
      if (lagFailure !== undefined) throw lagFailure;
      return hash.digest();
    },
    drop: () => hash.drop(),
  };
}

/** Both settle before either failure is thrown: the bytes are not reused under either. */
async function both(write: Promise<void>, hash: Promise<void>): Promise<void> {
  const [wrote, hashed] = await Promise.allSettled([write, hash]);
  if (wrote.status === 'rejected') throw wrote.reason;
  if (hashed.status === 'rejected') throw hashed.reason;
}
