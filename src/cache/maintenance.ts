// Cache maintenance shared by `wharf gc` / `wharf stats` and the admin API: remove leftovers,
// drop tags whose manifest is gone, enforce the size budget now, and describe the cache.
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { BlobStore } from './blob-store.ts';
import { BlobIndex } from './blob-index.ts';
import { evictorFromConfig, type Evictor, type EvictionPlan } from './evictor.ts';
import type { ManifestStore } from './manifest-store.ts';
import type { LocatedImage } from './located-image.ts';
import { locatePinned, pinnedDigests } from './pinned-images.ts';
import { manifestRefs, type ManifestRefs } from '../oci/manifest-refs.ts';

export interface MaintenanceDeps {
  readonly blobStore: BlobStore;
  readonly manifestStore: ManifestStore;
  readonly index: BlobIndex;
  readonly evictor: Evictor;
  /** Tags not confirmed upstream for this long are dropped. */
  readonly tagRetentionMs: number;
  /** Manifest and blob digests of pinned images: kept whatever their age. */
  readonly pinned: () => Promise<ReadonlySet<string>>;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * The blob index, pin lookup and evictor a cache needs, built from the config for the server
 * and the gc/stats commands alike. The index is empty until its load() is awaited.
 */
export function maintenanceFromConfig(
  config: Pick<Config, 'dataDir' | 'cache'>,
  deps: { blobStore: BlobStore; manifestStore: ManifestStore; metrics: Metrics; logger: Logger; locate: (text: string) => LocatedImage },
): MaintenanceDeps {
  const index = new BlobIndex({ store: deps.blobStore, metrics: deps.metrics });
  const pinnedImages = locatePinned(config.cache.pinned, deps.locate);
  const pinned = () => pinnedDigests(pinnedImages, deps.manifestStore);
  const evictor = evictorFromConfig(config, { index, store: deps.blobStore, metrics: deps.metrics, logger: deps.logger }, pinned);
  return { blobStore: deps.blobStore, manifestStore: deps.manifestStore, index, evictor, pinned, tagRetentionMs: config.cache.tagRetentionDays * DAY_MS };
}

export interface GcReport {
  readonly dryRun: boolean;
  readonly tempFiles: number;
  /** Tags whose manifest is gone, and tags past their retention. */
  readonly orphanedTags: readonly string[];
  readonly expiredTags: number;
  /** Manifests no tag refers to and none of whose blobs are cached. */
  readonly orphanedManifests: number;
  /** Repository links to digests neither stored as a manifest nor cached as a blob. */
  readonly orphanedLinks: number;
  readonly evicted: { readonly blobs: number; readonly bytes: number; readonly reason: EvictionPlan['reason']; readonly shortBytes: number };
}

/** Temp files idle this long belong to no running fill. */
const TEMP_IDLE_MS = 10 * 60 * 1000;

export async function collectGarbage(deps: MaintenanceDeps, options: { dryRun: boolean }): Promise<GcReport> {
  const { dryRun } = options;
  const store = deps.manifestStore;
  // One gc run asks about the same manifest up to three times (tag check, reachability, sweep);
  // only what it refers to is kept, not the bodies.
  const read = refsOnce(store);
  const tempFiles = await deps.blobStore.removeTempFiles({ olderThanMs: TEMP_IDLE_MS, dryRun });
  const pinned = await deps.pinned();
  const orphanedTags: string[] = [];
  let expiredTags = 0;
  const keptTops = new Set<string>();
  const expiry = Date.now() - deps.tagRetentionMs;
  for await (const { repo, tag, record } of store.scanTags()) {
    const orphaned = !(await read(record.digest));
    const expired = !orphaned && record.fetchedAt < expiry && !pinned.has(record.digest);
    if (!orphaned && !expired) {
      keptTops.add(record.digest);
      continue;
    }
    if (orphaned) orphanedTags.push(`${repo.upstream}/${repo.repository}:${tag}`);
    else expiredTags++;
    if (!dryRun) await store.deleteTag(repo, tag);
  }
  // Manifests reachable from a kept tag or a pin stay; others stay while any of their blobs is
  // cached (a pull by digest may come back for them). The rest is only bookkeeping.
  const reachable = new Set<string>(pinned);
  for (const top of keptTops) await markReachable(top, read, reachable);
  let orphanedManifests = 0;
  const deleted = new Set<string>();
  for await (const digest of store.scanManifests()) {
    if (reachable.has(digest)) continue;
    const refs = (await read(digest)) ?? { manifests: [], blobs: [] };
    if (refs.manifests.length === 0 && refs.blobs.some((b) => deps.index.has(b))) continue;
    if (refs.manifests.some((m) => reachable.has(m.digest))) continue;
    orphanedManifests++;
    deleted.add(digest);
    if (!dryRun) await store.deleteManifest(digest);
  }
  // A link outlives neither its content: links to what is gone go with it.
  let orphanedLinks = 0;
  for await (const { repo, digest } of store.scanLinks()) {
    const gone = deleted.has(digest) || (!deps.index.has(digest) && !(await read(digest)));
    if (!gone) continue;
    orphanedLinks++;
    if (!dryRun) await store.deleteLinks(repo, [digest]);
  }
  const plan = dryRun ? await deps.evictor.plan() : await deps.evictor.enforce();
  return {
    dryRun,
    tempFiles,
    orphanedTags,
    expiredTags,
    orphanedManifests,
    orphanedLinks,
    evicted: { blobs: plan.victims.length, bytes: plan.victims.reduce((s, v) => s + v.size, 0), reason: plan.reason, shortBytes: plan.shortBytes },
  };
}

/** What a stored manifest refers to, or undefined when it is not stored. */
type ReadRefs = (digest: string) => Promise<ManifestRefs | undefined>;

function refsOnce(store: ManifestStore): ReadRefs {
  const seen = new Map<string, Promise<ManifestRefs | undefined>>();
  return (digest) => {
    let found = seen.get(digest);
    if (!found) seen.set(digest, (found = store.getManifest(digest).then((m) => m && manifestRefs(m.body))));
    return found;
  };
}

async function markReachable(digest: string, read: ReadRefs, reachable: Set<string>): Promise<void> {
  if (reachable.has(digest)) return;
  reachable.add(digest);
  const refs = await read(digest);
  for (const child of refs?.manifests ?? []) await markReachable(child.digest, read, reachable);
}

export interface CacheStats {
  readonly blobs: number;
  readonly bytes: number;
  readonly manifests: number;
  readonly tags: number;
  readonly upstreams: Record<string, { repositories: number; tags: number }>;
  /** Repositories by the cached bytes their tagged images use (a blob shared counts for each). */
  readonly topRepositories: ReadonlyArray<{ repository: string; bytes: number; tags: number }>;
}

export async function cacheStats(deps: MaintenanceDeps, top = 10): Promise<CacheStats> {
  let manifests = 0;
  for await (const _ of deps.manifestStore.scanManifests()) manifests++;
  const sizes = new Map(deps.index.oldestFirst().map((b) => [b.digest, b.size]));
  const blobsOf = new Map<string, string[]>();
  const repos = new Map<string, { upstream: string; blobs: Set<string>; tags: number }>();
  let tags = 0;
  for await (const { repo, record } of deps.manifestStore.scanTags()) {
    tags++;
    const name = `${repo.upstream}/${repo.repository}`;
    const entry = repos.get(name) ?? { upstream: repo.upstream, blobs: new Set<string>(), tags: 0 };
    entry.tags++;
    for (const blob of await imageBlobs(record.digest, deps.manifestStore, blobsOf)) entry.blobs.add(blob);
    repos.set(name, entry);
  }
  const upstreams: Record<string, { repositories: number; tags: number }> = {};
  for (const entry of repos.values()) {
    const u = (upstreams[entry.upstream] ??= { repositories: 0, tags: 0 });
    u.repositories++;
    u.tags += entry.tags;
  }
  const ranked = [...repos].map(([repository, e]) => ({ repository, tags: e.tags, bytes: [...e.blobs].reduce((s, b) => s + (sizes.get(b) ?? 0), 0) }));
  ranked.sort((a, b) => b.bytes - a.bytes || a.repository.localeCompare(b.repository));
  return { blobs: deps.index.count, bytes: deps.index.bytes, manifests, tags, upstreams, topRepositories: ranked.slice(0, top) };
}

/** Blobs of an image (all platforms of an index), memoised per manifest digest. */
async function imageBlobs(digest: string, store: ManifestStore, memo: Map<string, string[]>): Promise<string[]> {
  const known = memo.get(digest);
  if (known) return known;
  memo.set(digest, []); // guards against a cycle in hostile data
  const manifest = await store.getManifest(digest);
  const refs = manifest ? manifestRefs(manifest.body) : { manifests: [], blobs: [] };
  const blobs = [...refs.blobs];
  for (const child of refs.manifests) blobs.push(...(await imageBlobs(child.digest, store, memo)));
  memo.set(digest, blobs);
  return blobs;
}
