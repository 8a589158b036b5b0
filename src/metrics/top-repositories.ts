// Pull counts per repository for the status page: too many distinct values for metric labels,
// so they are kept here, bounded. When full, the least-pulled half is dropped: repositories
// that matter come back quickly, and memory stays flat however many names clients try.
const DEFAULT_CAPACITY = 5000;

export class TopRepositories {
  readonly #counts = new Map<string, number>();
  readonly #capacity: number;

  constructor(capacity = DEFAULT_CAPACITY) {
    this.#capacity = capacity;
  }

  record(repository: string): void {
    this.#counts.set(repository, (this.#counts.get(repository) ?? 0) + 1);
    if (this.#counts.size > this.#capacity) this.#dropLeastPulled();
  }

  top(n: number): Array<{ repository: string; pulls: number }> {
    return [...this.#counts]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, n)
      .map(([repository, pulls]) => ({ repository, pulls }));
  }

  #dropLeastPulled(): void {
    const sorted = [...this.#counts].sort((a, b) => a[1] - b[1]);
    for (const [name] of sorted.slice(0, Math.floor(sorted.length / 2))) this.#counts.delete(name);
  }
}
