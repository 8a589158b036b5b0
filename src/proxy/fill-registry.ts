// The one owner of running blob fills: a fill is registered under its digest from the moment
// it starts until its body is written (or it failed), so every request for the digest in that
// time joins it. Unlike SingleFlight, whose work ends when its promise settles, a fill stays
// joinable after it has started answering: until the task that writes it ends.
import type { BlobFill } from './blob-fill.ts';

export class FillRegistry {
  readonly #onCount: (running: number) => void;
  /** Per digest: the fill being started, then running. */
  readonly #byDigest = new Map<string, Promise<BlobFill>>();
  /** Fills still writing, and the task that writes each. */
  readonly #running = new Map<BlobFill, Promise<void>>();

  /** onCount: told how many fills are writing whenever that changes (a gauge). */
  constructor(options: { onCount?: (running: number) => void } = {}) {
    this.#onCount = options.onCount ?? (() => undefined);
  }

  /** The fill running (or starting) for this digest, if any. */
  get(digest: string): Promise<BlobFill> | undefined {
    return this.#byDigest.get(digest);
  }

  /**
   * Starts a fill: start() gets the upstream's answer and returns the fill and the task that
   * writes it. The digest is taken at once, so concurrent requests join rather than start.
   */
  start(digest: string, start: () => Promise<{ fill: BlobFill; task: Promise<void> }>): Promise<BlobFill> {
    const starting = start().then(({ fill, task }) => {
      const running = task.finally(() => {
        this.#byDigest.delete(digest);
        this.#running.delete(fill);
        this.#onCount(this.#running.size);
      });
      this.#running.set(fill, running);
      this.#onCount(this.#running.size);
      return fill;
    });
    this.#byDigest.set(digest, starting);
    starting.catch(() => this.#byDigest.delete(digest));
    return starting;
  }

  /** Resolves when this fill's task (its bookkeeping included) has ended. */
  async finished(fill: BlobFill): Promise<void> {
    await this.#running.get(fill);
  }

  /** What running fills have announced and not yet written: disk space already spoken for. */
  bytesStillToWrite(): number {
    let pending = 0;
    for (const fill of this.#running.keys()) pending += Math.max(0, (fill.size ?? 0) - fill.written);
    return pending;
  }

  /** Waits for every running fill to end (shutdown, tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.#running.values()]);
  }
}
