// Requests and the bytes sent for them, counted in plain numbers per label set and added to
// wharf_requests_total and wharf_served_bytes_total when those are read (a scrape, a hit
// thread's report). prom-client hashes and checks the labels of every inc(): two counters per
// request cost ~1.2 us, as much as a tenth of answering a cached manifest (docs/benchmarks.md).
import type { Counter } from 'prom-client';

type RequestLabels = Record<'kind' | 'result' | 'upstream', string>;

interface Series {
  readonly labels: RequestLabels;
  readonly served: Record<'kind' | 'result', string>;
  requests: number;
  bytes: number;
}

export class RequestTally {
  readonly #series = new Map<string, Series>();

  count(kind: string, result: string, upstream: string, bytes: number): void {
    const key = `${kind}\u0000${result}\u0000${upstream}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { labels: { kind, result, upstream }, served: { kind, result }, requests: 0, bytes: 0 };
      this.#series.set(key, series);
    }
    series.requests++;
    series.bytes += bytes;
  }

  /** What was counted since the last drain, into the counters (each its own share). */
  drainRequests(into: Counter<'kind' | 'result' | 'upstream'>): void {
    for (const s of this.#series.values()) {
      if (s.requests === 0) continue;
      into.inc(s.labels, s.requests);
      s.requests = 0;
    }
  }

  drainBytes(into: Counter<'kind' | 'result'>): void {
    for (const s of this.#series.values()) {
      if (s.bytes === 0) continue;
      into.inc(s.served, s.bytes);
      s.bytes = 0;
    }
  }
}
