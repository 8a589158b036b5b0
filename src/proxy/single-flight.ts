// Collapses concurrent calls with the same key into one: the first caller runs the work, the
// others await its outcome.
export class SingleFlight<T> {
  readonly #inFlight = new Map<string, Promise<T>>();

  run(key: string, work: () => Promise<T>): { result: Promise<T>; shared: boolean } {
    const existing = this.#inFlight.get(key);
    if (existing) return { result: existing, shared: true };
    const result = work().finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, result);
    return { result, shared: false };
  }
}
