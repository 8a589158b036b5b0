// The tallied histogram must read exactly as prom-client's own histogram fed the same
// observations: in the scrape text, as JSON, and summed over threads by the aggregator.
import { describe, expect, it } from 'vitest';
import { AggregatorRegistry, Histogram, Registry, type MetricValueWithName } from 'prom-client';
import { TalliedHistogram } from '../../src/metrics/tallied-histogram.ts';

const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120];
// On the bounds, between them, past the last one, and zero.
const OBSERVED: Array<[string, number]> = [
  ['manifest', 0.00002],
  ['manifest', 0.001],
  ['manifest', 0.0011],
  ['blob', 0.3],
  ['blob', 120],
  ['blob', 500],
  ['manifest', 0],
  ['tags', 0.05],
];

function both(): { ours: Registry; theirs: Registry } {
  const ours = new Registry();
  const theirs = new Registry();
  const tallied = new TalliedHistogram({ name: 'wharf_request_duration_seconds', help: 'Time', label: 'kind', buckets: BUCKETS, registers: [ours] });
  const reference = new Histogram({ name: 'wharf_request_duration_seconds', help: 'Time', labelNames: ['kind'], buckets: BUCKETS, registers: [theirs] });
  for (const [kind, seconds] of OBSERVED) {
    tallied.observe(kind, seconds);
    reference.observe({ kind }, seconds);
  }
  return { ours, theirs };
}

describe('TalliedHistogram', () => {
  it('writes the scrape text prom-client writes', async () => {
    const { ours, theirs } = both();
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('gives the JSON prom-client gives, and sums across threads the same way', async () => {
    const { ours, theirs } = both();
    const strip = (json: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) => json.map((m) => ({ ...m, values: (m.values as Array<MetricValueWithName<string>>).map(({ labels, value, metricName }) => ({ labels, value, metricName })) }));
    expect(strip(await ours.getMetricsAsJSON())).toEqual(strip(await theirs.getMetricsAsJSON()));
    const summed = AggregatorRegistry.aggregate([await ours.getMetricsAsJSON(), await ours.getMetricsAsJSON()]);
    const reference = AggregatorRegistry.aggregate([await theirs.getMetricsAsJSON(), await theirs.getMetricsAsJSON()]);
    expect(await summed.metrics()).toBe(await reference.metrics());
  });

  it('starts over on reset, and ignores a value that is not a number', async () => {
    const { ours } = both();
    ours.resetMetrics();
    const tallied = ours.getSingleMetric('wharf_request_duration_seconds') as unknown as TalliedHistogram<'kind'>;
    tallied.observe('manifest', Number.NaN);
    expect(await ours.metrics()).toBe('# HELP wharf_request_duration_seconds Time\n# TYPE wharf_request_duration_seconds histogram\n');
  });
});
