// A Prometheus histogram with one label, observed in plain numbers: prom-client's observe() hashes
// and checks the label object on every call (~0.26 us measured alone), which every answered
// request paid for wharf_request_duration_seconds, on a cached-manifest answer of ~25 us. The
// series read the same as prom-client's own histogram (a test holds the text equal), so the
// registry, the scrape and the hit threads' aggregation treat it as one.
import type { Histogram, MetricValueWithName, Registry } from 'prom-client';

interface Series {
  /** Observations per bucket (not cumulative); the last slot is past the largest bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

type Value = MetricValueWithName<string> & { sharedLabels?: Record<string, string> };

/** What prom-client's own metrics give the registry (its type declarations say an enum; it is this string). */
interface HistogramExport {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly values: Value[];
  readonly aggregator: 'sum';
}

export class TalliedHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #label: L;
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, Series>();

  constructor(options: { name: string; help: string; label: L; buckets: readonly number[]; registers: readonly Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#label = options.label;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    // The registry asks a metric for its name, get(), getForPromString() and reset(), nothing
    // else; its types list only prom-client's own classes.
    for (const registry of options.registers) registry.registerMetric(this as unknown as Histogram<L>);
  }

  observe(labelValue: string, value: number): void {
    if (!Number.isFinite(value)) return;
    let series = this.#series.get(labelValue);
    if (series === undefined) {
      series = { counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 };
      this.#series.set(labelValue, series);
    }
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    series.counts[i]!++;
    series.sum += value;
    series.count++;
  }

  /** The series as prom-client writes them out (the label as a shared one, after le). */
  async getForPromString(): Promise<HistogramExport> {
    return this.#export((labels, shared) => ({ labels, sharedLabels: shared }));
  }

  /** The series as prom-client gives them as JSON (every label on each value). */
  async get(): Promise<HistogramExport> {
    return this.#export((labels, shared) => ({ labels: { ...labels, ...shared } }));
  }

  reset(): void {
    this.#series.clear();
  }

  #export(shape: (labels: Record<string, string | number>, shared: Record<string, string>) => Pick<Value, 'labels' | 'sharedLabels'>): HistogramExport {
    const values: Value[] = [];
    for (const [labelValue, s] of this.#series) {
      const shared = { [this.#label]: labelValue };
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ ...shape({ le }, shared), value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ ...shape({ le: '+Inf' }, shared), value: s.count, metricName: `${this.name}_bucket` });
      values.push({ ...shape({}, shared), value: s.sum, metricName: `${this.name}_sum` });
      values.push({ ...shape({}, shared), value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
