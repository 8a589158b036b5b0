// How a blob writer hashes the bytes it writes. The native hash thread (native-hash-thread.ts)
// writes each batch into the file and then hashes it, one hand-off per batch while the main
// thread goes back to receiving. The Worker (hash-offload.ts) hashes while the thread pool
// writes. On either, a fill's batch may still be hashed while the next is written. Without a
// hash thread, the main thread hashes while the pool writes. Each way the digest covers exactly
// the bytes written, in order.
import { createHash } from 'node:crypto';
import type { HashThread, OffloadedHash } from './hash-offload.ts';

/** The file a writer's bytes go into. */
export interface WriteTarget {
  /** Its open descriptor, for a hash thread that writes too; open until every write has settled. */
  readonly fd: number;
  /** Writes bytes at a position; resolves once every byte is in the file. */
  write(bytes: Uint8Array, position: number): Promise<void>;
}

export interface ChunkHasher {
  /**
   * Writes the chunk at position into the target and hashes it. Settles when both have; or,
   * given release, once the write has, calling release when the hash is done with the chunk too
   * (a hash that failed fails digest()).
   */
  writeAndHash(chunk: Uint8Array, position: number, target: WriteTarget, release?: () => void): Promise<void>;
  /** The digest of every chunk, once all of them are hashed. */
  digest(): Promise<string>;
  /** Forgets the hash (an aborted write). */
  drop(): void;
}

export function mainThreadHasher(algorithm: string): ChunkHasher {
  const hash = createHash(algorithm);
  return {
    async writeAndHash(chunk, position, target, release) {
      // Started first so hashing on this thread overlaps the I/O on the pool.
      const written = target.write(chunk, position);
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
 * Hashing on the hash thread. One that writes too (the native one) writes and hashes any chunk
 * where it is. Otherwise a batch already in shared memory (a fill's staging buffer,
 * body-batches.ts) is written and hashed where it is, and any other is copied once into the
 * writer's own shared buffer first; the pool writes from it while the hash thread hashes it.
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
    async writeAndHash(chunk, position, target, release) {
      if (lagFailure !== undefined) {
        release?.();
        throw lagFailure;
      }
      // Written and hashed where it is: by the thread that does both, or a shared batch by the pool and the thread.
      const inPlace = hash.writeAndUpdate
        ? hash.writeAndUpdate(target.fd, chunk, position)
        : chunk.buffer instanceof SharedArrayBuffer
          ? { hashed: hash.update(chunk.buffer, chunk.byteOffset, chunk.byteLength), written: target.write(chunk, position) }
          : undefined;
      if (inPlace && release) {
        // The hash may lag: the next chunk is written while the thread still hashes this one.
        const { written, hashed } = inPlace;
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
        if (inPlace) {
          await both(inPlace.written, inPlace.hashed);
          return;
        }
        // Through the writer's own shared buffer, in pieces of its size.
        const buf = room(chunk.byteLength);
        for (let from = 0; from < chunk.byteLength; ) {
          const n = Math.min(chunk.byteLength - from, buf.length);
          buf.set(chunk.subarray(from, from + n), 0);
          await both(target.write(buf.subarray(0, n), position + from), hash.update(shared!, 0, n));
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
