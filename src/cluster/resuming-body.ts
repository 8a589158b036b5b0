// The body of a fill that follows another replica: the peer's stream, and should the peer die
// part way (its lease then lapses), the rest of the blob straight from the upstream with a
// Range, so the clients following this replica's fill finish instead of being cut. The bytes
// still go through this replica's hash: a resumed blob is whole and right, or it is not kept.
import type { FillBody } from '../proxy/blob-fill.ts';

/** The part of a blob from offset to its end: a body to read and destroy. */
export type ResumeFrom = (offset: number) => Promise<FillBody>;

export class ResumingBody implements FillBody {
  readonly #size: number | undefined;
  readonly #resume: ResumeFrom;
  readonly #onResume: (offset: number, why: unknown) => void;
  #current: FillBody;
  #destroyed: Error | undefined;
  #resumed = false;

  /** size: the blob's, when known: a peer stream that ends short of it is resumed too. */
  constructor(first: FillBody, size: number | undefined, resume: ResumeFrom, onResume: (offset: number, why: unknown) => void) {
    this.#current = first;
    this.#size = size;
    this.#resume = resume;
    this.#onResume = onResume;
  }

  /** Whether the upstream had to bring the rest. */
  get resumed(): boolean {
    return this.#resumed;
  }

  destroy(error?: Error): void {
    this.#destroyed = error ?? new Error('body destroyed');
    this.#current.destroy?.(this.#destroyed);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    let offset = 0;
    for (;;) {
      let failure: unknown;
      try {
        for await (const chunk of this.#current) {
          offset += chunk.byteLength;
          yield chunk;
        }
      } catch (err) {
        failure = err;
      }
      const short = this.#size !== undefined && offset < this.#size;
      if (failure === undefined && !short) return;
      // Once only, and never for a body destroyed on purpose (too slow, or given up).
      if (this.#resumed || this.#destroyed) throw failure ?? new Error(`stream ended after ${offset} bytes`);
      this.#resumed = true;
      this.#onResume(offset, failure ?? new Error(`peer stream ended after ${offset} of ${this.#size} bytes`));
      this.#current = await this.#resume(offset);
      if (this.#destroyed) this.#current.destroy?.(this.#destroyed);
    }
  }
}
