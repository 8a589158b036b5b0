// What the status page, /readyz and `GET /status.json` say about a running wharf: stores,
// upstreams (from their breakers, without dialling anyone), cache size, hit ratio, traffic and
// the most pulled repositories. Everything comes from state wharf already keeps.
import type { BlobStore } from '../cache/blob-store.ts';
import type { ManifestStore } from '../cache/manifest-store.ts';
import { seriesOf, type Metrics } from '../metrics/metrics.ts';
import type { TopRepositories } from '../metrics/top-repositories.ts';
import type { HttpUpstream } from '../proxy/upstream.ts';

export interface StatusSources {
  readonly version: string;
  readonly startedAt: number;
  readonly offline: boolean;
  readonly blobStore: BlobStore;
  readonly manifestStore: ManifestStore;
  readonly upstreams: readonly HttpUpstream[];
  readonly metrics: Metrics;
  readonly topRepositories: TopRepositories;
}

export interface Check {
  readonly ok: boolean;
  readonly error?: string;
}

export type UpstreamReachability = 'reachable' | 'unreachable' | 'unknown' | 'offline';

const CHECK_TIMEOUT_MS = 1000;
// Results served from the cache: a hit, a confirmed or stale tag, a waiter on a running fill.
const FROM_CACHE = new Set(['hit', 'revalidated', 'stale', 'coalesced']);
const COUNTED = new Set([...FROM_CACHE, 'miss', 'bypass']);

export async function checkStores(sources: StatusSources): Promise<{ blobStore: Check; manifestStore: Check & { backend: string } }> {
  const [blobStore, manifestStore] = await Promise.all([check(() => sources.blobStore.ping()), check(() => sources.manifestStore.ping())]);
  return { blobStore, manifestStore: { ...manifestStore, backend: sources.manifestStore.backend } };
}

export function upstreamStatus(sources: StatusSources) {
  return sources.upstreams.map((u) => {
    const { breaker } = u;
    const lastFailure = breaker.lastFailure;
    const lastSuccessAt = breaker.lastSuccessAt;
    let reachability: UpstreamReachability = 'unknown';
    if (sources.offline) reachability = 'offline';
    else if (breaker.state !== 'closed') reachability = 'unreachable';
    else if (lastSuccessAt !== undefined && (lastFailure === undefined || lastSuccessAt >= lastFailure.at)) reachability = 'reachable';
    else if (lastFailure !== undefined) reachability = 'unreachable';
    return {
      name: u.name,
      reachability,
      breaker: breaker.state,
      lastSuccessAt: lastSuccessAt === undefined ? undefined : new Date(lastSuccessAt).toISOString(),
      lastFailure: lastFailure && { at: new Date(lastFailure.at).toISOString(), reason: lastFailure.reason },
    };
  });
}

export async function statusReport(sources: StatusSources) {
  const { metrics } = sources;
  const everyThread = await metrics.combined();
  const requests = await seriesOf(everyThread, 'wharf_requests_total');
  const byResult: Record<string, number> = {};
  for (const { labels, value } of requests) {
    if (labels.kind !== 'manifest' && labels.kind !== 'blob') continue;
    const result = String(labels.result);
    byResult[result] = (byResult[result] ?? 0) + value;
  }
  const counted = Object.entries(byResult).filter(([r]) => COUNTED.has(r)).reduce((sum, [, v]) => sum + v, 0);
  const fromCache = Object.entries(byResult).filter(([r]) => FROM_CACHE.has(r)).reduce((sum, [, v]) => sum + v, 0);
  const served = await seriesOf(everyThread, 'wharf_served_bytes_total');
  const sumServed = (pick: (result: string) => boolean) => served.filter((v) => pick(String(v.labels.result))).reduce((s, v) => s + v.value, 0);
  return {
    version: sources.version,
    uptimeSeconds: Math.round((Date.now() - sources.startedAt) / 1000),
    offline: sources.offline,
    stores: await checkStores(sources),
    upstreams: upstreamStatus(sources),
    cache: { blobs: await gaugeValue(metrics.cacheBlobs), bytes: await gaugeValue(metrics.cacheBytes) },
    requests: { byResult, hitRatio: counted === 0 ? null : fromCache / counted },
    traffic: {
      servedBytes: sumServed(() => true),
      servedFromCacheBytes: sumServed((r) => FROM_CACHE.has(r)),
      upstreamBytes: (await metrics.upstreamBytes.get()).values.reduce((s, v) => s + v.value, 0),
    },
    topRepositories: sources.topRepositories.top(10),
  };
}

async function check(ping: () => Promise<void>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([ping(), timeout]);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

async function gaugeValue(gauge: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await gauge.get()).values[0]?.value ?? 0;
}
