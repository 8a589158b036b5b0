// Collapses concurrent calls with the same key into one: the first caller runs the work, the
// others await its outcome. startedAt lets a joiner know how long the work has been running.
export interface Flight<T> {
  readonly result: Promise<T>;
  /** Whether this caller joined work another caller started. */
  readonly shared: boolean;
  readonly startedAt: number;
}

export class SingleFlight<T> {
  readonly #inFlight = new Map<string, { result: Promise<T>; startedAt: number }>();

  run(key: string, work: () => Promise<T>): Flight<T> {
    const existing = this.#inFlight.get(key);
    if (existing) return { ...existing, shared: true };
    const startedAt = Date.now();
    const result = work().finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, { result, startedAt });
    return { result, startedAt, shared: false };
  }
}
