// `wharf gc` and `wharf stats` on the configured cache, without a running server. While a
// server runs on the same cache, its admin API (/admin/gc, /admin/stats) does the same with
// the server's own view of what is in use.
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../config/load-config.ts';
import { createLogger } from '../logger.ts';
import { Metrics } from '../metrics/metrics.ts';
import { cacheStats, collectGarbage, maintenanceFromConfig, type MaintenanceDeps } from '../cache/maintenance.ts';
import { megabytes } from './format.ts';
import { openCache, type Cache } from './open-cache.ts';

export const GC_USAGE = `Usage: wharf gc [options]

Removes temp files left by crashes, tags whose manifest is gone, and evicts least recently
used blobs until the cache is within cache.maxBytes and cache.minFreeBytes.

Options:
  -n, --dry-run       say what would be removed, remove nothing
  -c, --config FILE   configuration file
`;

export const STATS_USAGE = `Usage: wharf stats [options]

Cache size, blob, manifest and tag counts, per upstream, and the largest repositories.

Options:
      --json          print JSON
  -c, --config FILE   configuration file
`;

export async function gcCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'dry-run': { type: 'boolean', short: 'n' }, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return print(GC_USAGE, 0);
  return withMaintenance(values.config, async (deps) => {
    const report = await collectGarbage(deps, { dryRun: values['dry-run'] ?? false });
    const verb = report.dryRun ? 'would remove' : 'removed';
    const lines = [
      `${verb} ${report.tempFiles} temp files left by crashes`,
      `${verb} ${report.orphanedTags.length} tags whose manifest is gone${report.orphanedTags.length ? `: ${report.orphanedTags.join(', ')}` : ''}`,
      `${verb} ${report.expiredTags} tags not confirmed upstream within cache.tagRetentionDays`,
      `${verb} ${report.orphanedManifests} manifests no tag needs and with no cached blob`,
      `${verb} ${report.orphanedLinks} repository links to content no longer cached`,
      `${report.dryRun ? 'would evict' : 'evicted'} ${report.evicted.blobs} blobs (${megabytes(report.evicted.bytes)})${report.evicted.reason === 'none' ? ': within budget' : ` for the ${report.evicted.reason === 'budget' ? 'size budget' : 'free disk space'}`}`,
    ];
    if (report.evicted.shortBytes > 0) lines.push(`still ${megabytes(report.evicted.shortBytes)} over: the rest is pinned or in use`);
    return print(`${lines.join('\n')}\n`, 0);
  });
}

export async function statsCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return print(STATS_USAGE, 0);
  return withMaintenance(values.config, async (deps) => {
    const stats = await cacheStats(deps);
    if (values.json) return print(`${JSON.stringify(stats, null, 2)}\n`, 0);
    const lines = [`cache: ${stats.blobs} blobs, ${megabytes(stats.bytes)}; ${stats.manifests} manifests; ${stats.tags} tags`];
    for (const [name, u] of Object.entries(stats.upstreams)) lines.push(`  ${name}: ${u.repositories} repositories, ${u.tags} tags`);
    if (stats.topRepositories.length > 0) lines.push('largest repositories:');
    for (const r of stats.topRepositories) lines.push(`  ${r.repository}: ${megabytes(r.bytes)} in ${r.tags} tags`);
    return print(`${lines.join('\n')}\n`, 0);
  });
}

async function withMaintenance(configPath: string | undefined, work: (deps: MaintenanceDeps) => Promise<number>): Promise<number> {
  const config = await loadConfig({ path: configPath, env: process.env });
  const cache = await openCache(config, createLogger('silent'));
  try {
    return await work(await maintenanceDeps(config, cache));
  } finally {
    await cache.close();
  }
}

async function maintenanceDeps(config: Config, cache: Cache): Promise<MaintenanceDeps> {
  const logger = createLogger('silent');
  const deps = maintenanceFromConfig(config, { ...cache, metrics: new Metrics({ processMetrics: false }), logger });
  await deps.index.load();
  return deps;
}

function print(text: string, code: number): number {
  process.stdout.write(text);
  return code;
}
