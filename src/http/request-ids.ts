// Request ids for requests that bring no usable X-Request-Id: UUID-shaped (version 4 and variant
// bits set), unique without a random draw each. The first 24 characters (74 random bits) are drawn once per instance
// (each process and each hit thread has its own), the last 48 count up; formatting a fresh
// randomUUID() cost ~0.8 us of a cached manifest's ~25 us answer (docs/benchmarks.md).
import { randomUUID } from 'node:crypto';

export class RequestIds {
  /** The first 24 of the 36 characters, `xxxxxxxx-xxxx-4xxx-yxxx-`. */
  readonly #prefix = randomUUID().slice(0, 24);
  #count = 0;

  next(): string {
    this.#count = (this.#count + 1) % 2 ** 48;
    return this.#prefix + this.#count.toString(16).padStart(12, '0');
  }
}
