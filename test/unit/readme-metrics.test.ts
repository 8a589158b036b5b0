// The README's metrics table names every metric wharf exports (its own; prom-client's process
// metrics are listed as such), so a new metric cannot ship undocumented.
import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/metrics.ts';

it('lists every wharf metric in the README', async () => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const names = new Metrics({ processMetrics: false }).registry.getMetricsAsArray().map((m) => m.name);
  expect(names.length).toBeGreaterThan(20);
  expect(names.filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
});
