// What the status page, /readyz and `GET /status.json` say about a running wharf: stores,
// upstreams (from their breakers, without dialling anyone), cache size, hit ratio, traffic and
// the most pulled repositories. Everything comes from state wharf already keeps.
import type { BlobStore } from '../cache/blob-store.ts';
import type { ManifestStore } from '../cache/manifest-store.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { TopRepositories } from '../metrics/top-repositories.ts';
import type { HttpUpstream } from '../proxy/upstream.ts';
import type { ReplicaRegistry } from '../cluster/replica-registry.ts';

export interface StatusSources {
  readonly version: string;
  readonly startedAt: number;
  readonly offline: boolean;
  readonly blobStore: BlobStore;
  readonly manifestStore: ManifestStore;
  readonly upstreams: readonly HttpUpstream[];
  readonly metrics: Metrics;
  readonly topRepositories: TopRepositories;
  /** The S3 store blobs are shared on, when configured. */
  readonly sharedBlobStore?: { ping(): Promise<void> } | undefined;
  /** The replicas sharing the cache, when this one is in a cluster. */
  readonly replicas?: ReplicaRegistry | undefined;
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

export async function checkStores(sources: StatusSources): Promise<{ blobStore: Check; manifestStore: Check & { backend: string }; sharedBlobStore?: Check }> {
  const shared = sources.sharedBlobStore;
  const [blobStore, manifestStore, sharedBlobStore] = await Promise.all([
    check(() => sources.blobStore.ping()),
    check(() => sources.manifestStore.ping()),
    shared && check(() => shared.ping()),
  ]);
  return { blobStore, manifestStore: { ...manifestStore, backend: sources.manifestStore.backend }, ...(sharedBlobStore && { sharedBlobStore }) };
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
  const figures = await sources.metrics.figures();
  const sum = (byResult: Readonly<Record<string, number>>, pick: (result: string) => boolean) =>
    Object.entries(byResult)
      .filter(([result]) => pick(result))
      .reduce((total, [, value]) => total + value, 0);
  const counted = sum(figures.requestsByResult, (r) => COUNTED.has(r));
  const fromCache = sum(figures.requestsByResult, (r) => FROM_CACHE.has(r));
  return {
    version: sources.version,
    uptimeSeconds: Math.round((Date.now() - sources.startedAt) / 1000),
    offline: sources.offline,
    stores: await checkStores(sources),
    upstreams: upstreamStatus(sources),
    cache: { blobs: figures.cacheBlobs, bytes: figures.cacheBytes },
    requests: { byResult: figures.requestsByResult, hitRatio: counted === 0 ? null : fromCache / counted },
    traffic: {
      servedBytes: sum(figures.servedBytesByResult, () => true),
      servedFromCacheBytes: sum(figures.servedBytesByResult, (r) => FROM_CACHE.has(r)),
      upstreamBytes: figures.upstreamBytes,
    },
    topRepositories: sources.topRepositories.top(10),
    ...(sources.replicas && { replicas: await sources.replicas.list() }),
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

