// What readers of a fill wait on, wherever the fill runs: its state (filling until it completes
// or fails, then settled for good), the error it failed with, and a wake-up at every change. The
// fill on the thread that runs it (blob-fill.ts) and a hit thread's view of it
// (threads/followed-fill.ts) each hold one.
export type FillState = 'filling' | 'complete' | 'failed';

export class FillSignal {
  #state: FillState = 'filling';
  #error: Error | undefined;
  #wake: Array<() => void> = [];

  get state(): FillState {
    return this.#state;
  }

  get error(): Error | undefined {
    return this.#error;
  }

  /** Resolves at the next change; at once when the fill is settled. */
  changed(): Promise<void> {
    if (this.#state !== 'filling') return Promise.resolve();
    return new Promise((resolve) => this.#wake.push(resolve));
  }

  /** Something readers care about moved (bytes, verification). */
  notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
  }

  complete(): void {
    this.#state = 'complete';
    this.notify();
  }

  /** The first failure counts; a settled fill stays as it is. */
  fail(error: Error): void {
    if (this.#state !== 'filling') return;
    this.#error = error;
    this.#state = 'failed';
    this.notify();
  }
}
