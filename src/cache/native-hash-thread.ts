// Hashing on wharf's native hash thread (native/hash.c): OpenSSL on one plain thread, with no
// JavaScript engine of its own, so it costs its stack where a Worker (hash-offload.ts) costs
// 10-20 MB. Preferred wherever the addon is built; the Worker is the fallback.
import { loadNativeAddon } from '../native-addon.ts';
import { HashThreadError, type HashThread, type OffloadedHash } from './hash-offload.ts';

/** What native/hash.c exports. A handle is an opaque object; its context is freed when it is collected. */
interface HashAddon {
  create(algorithm: string): object;
  /** Hashes the bytes on the thread; they stay untouched until the promise settles. */
  update(handle: object, bytes: Uint8Array): Promise<void>;
  /** pwrites every byte to fd at position, then hashes them, on the thread: [written, hashed]. */
  writeAndUpdate(handle: object, fd: number, bytes: Uint8Array, position: number): [Promise<void>, Promise<void>];
  /** Only once every update has settled; once. */
  digest(handle: object): string;
}

/** The native hash thread, or the reason it cannot be had. */
export function loadNativeHashThread(): HashThread | Error {
  const addon = loadNativeAddon<HashAddon>('hash');
  if (addon instanceof Error) return addon;
  return {
    hash(algorithm: string): OffloadedHash {
      let handle: object;
      try {
        handle = addon.create(algorithm);
      } catch (err) {
        throw new HashThreadError(`cannot hash with ${algorithm}`, { cause: err });
      }
      return {
        // async: a refusal (an update after the digest) rejects, like a failed update, rather than throwing.
        update: async (buffer, offset, length) => addon.update(handle, new Uint8Array(buffer, offset, length)),
        writeAndUpdate: (fd, bytes, position) => {
          try {
            const [written, hashed] = addon.writeAndUpdate(handle, fd, bytes, position);
            return { written, hashed };
          } catch (err) {
            // A refusal (bad arguments, an update after the digest) fails both, like a failed write.
            const refused = Promise.reject(err as Error);
            refused.catch(() => undefined);
            return { written: refused, hashed: refused };
          }
        },
        digest: async () => addon.digest(handle),
        // Nothing to stop: the context goes with the handle.
        drop: () => undefined,
      };
    },
    close: async () => undefined,
  };
}
