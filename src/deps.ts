// The composition root of the server's main thread: config in, every long-lived object out.
// A hit thread's parts come from threads/hit-deps.ts (apart, so that a hit thread does not load
// the upstream client), and the stores, for every role and CLI commands too, from
// cache/open-stores.ts. Nothing else constructs stores, clients or services; nothing is global.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/load-config.ts';
import type { BlobStore } from './cache/blob-store.ts';
import type { ManifestStore } from './cache/manifest-store.ts';
import { locateImage } from './proxy/locate-image.ts';
import { collectGarbage, maintenanceFromConfig } from './cache/maintenance.ts';
import { openBlobStore, openHashThread, openManifestStore, openSharedBlobs } from './cache/open-stores.ts';
import type { SharedBlobs } from './cache/shared-blobs.ts';
import { openCluster, readClusterSecret, type ClusterParts } from './cluster/open-cluster.ts';
import { FillOrigins } from './cluster/fill-origins.ts';
import { linkTaggedImagesOnce, TAG_LINKS_MARKER } from './cache/link-tagged-once.ts';
import { defaultUpstreamName, UpstreamRouter } from './proxy/upstream-router.ts';
import { Metrics } from './metrics/metrics.ts';
import { logStream } from './logger.ts';
import { BatchedLogWriter } from './logging/batched-log-writer.ts';
import { TopRepositories } from './metrics/top-repositories.ts';
import { readVersion } from './version.ts';
import { HttpUpstream } from './proxy/upstream.ts';
import { RepositoryLinks } from './proxy/repository-links.ts';
import { openAccessGate } from './auth/open-access-gate.ts';
import { BlobService } from './proxy/blob-service.ts';
import { CacheWriteGuard } from './cache/cache-write-guard.ts';
import { CacheAccounting } from './cache/cache-accounting.ts';
import { FillRegistry } from './proxy/fill-registry.ts';
import { ManifestService } from './proxy/manifest-service.ts';
import { ReferrersService } from './proxy/referrers-service.ts';
import { TagListService } from './proxy/tag-list-service.ts';
import { PrefetchService } from './proxy/prefetch-service.ts';
import type { AppDeps } from './app.ts';
import { chooseFileSender } from './http/file-sender.ts';
import { RequestObserver } from './http/request-observer.ts';
import { ManifestFastPath } from './http/manifest-fast-path.ts';

const EVICTION_CHECK_MS = 60_000;
const GC_EVERY_MS = 3600 * 1000;

export interface Deps extends AppDeps {
  readonly manifestFastPath: ManifestFastPath;
  readonly blobStore: BlobStore;
  readonly manifestStore: ManifestStore;
  /** Set when this wharf shares fills with other replicas (config `cluster`). */
  readonly cluster: ClusterParts | undefined;
  close(): Promise<void>;
}

export async function createDeps(config: Config, logger: Logger): Promise<Deps> {
  const clusterSecret = await readClusterSecret(config);
  const metrics = new Metrics();
  const output = logStream(logger);
  if (output instanceof BatchedLogWriter) metrics.countDroppedLogLines(() => output.droppedLines);
  // A data dir that cannot be written must not keep wharf from serving: blobs then pass
  // through uncached and the manifest store is skipped (both logged and counted).
  await mkdir(config.dataDir, { recursive: true }).catch((err: unknown) => logger.error({ err: String(err) }, 'cannot create dataDir'));
  const hashOffload = openHashThread(config, logger);
  const blobStore = openBlobStore(config, hashOffload);
  await blobStore
    .removeTempFiles()
    .then((removed) => removed > 0 && logger.info({ removed }, 'removed temp files left by an earlier run'))
    .catch((err: unknown) => logger.error({ err: String(err) }, 'cannot clean blob temp files'));

  const manifestStore = await openManifestStore(config, logger, metrics);
  const sharedBlobs = await openSharedBlobs(config, logger, metrics);
  if (sharedBlobs) checkSharedBlobsAtStart(sharedBlobs.shared, config, logger);
  const version = readVersion();
  const startedAt = Date.now();
  const cluster = await openCluster(config, { secret: clusterSecret, logger, metrics, version, startedAt });

  const settings = { offline: config.offline, staleAfterMs: config.resilience.staleAfterMs, breaker: config.resilience.breaker };
  const upstreams = config.upstreams.map((u) => new HttpUpstream(u, settings, { metrics, logger }));
  if (config.offline) logger.warn('offline mode: serving only the cache, no upstream will be contacted');
  const router = new UpstreamRouter(upstreams, defaultUpstreamName(config.upstreams));

  const maintenance = maintenanceFromConfig(config, { blobStore, manifestStore, metrics, logger, locate: (text) => locateImage(router, text) });
  const { index, evictor } = maintenance;
  // Tags cached before repository links existed get theirs, in the background: until then their
  // content is confirmed with the upstream (a HEAD) before it is served under their repository.
  // Once per data dir (link-tagged-once.ts): the scan costs ~0.3 ms a tag.
  linkTaggedImagesOnce(manifestStore, join(config.dataDir, TAG_LINKS_MARKER))
    .then((linked) => linked !== undefined && linked > 0 && logger.info({ linked }, 'linked tagged images cached before repository links to their repositories'))
    .catch((err: unknown) => logger.error({ err: String(err) }, 'cannot link tagged images to their repositories'));
  // The index is read in the background: wharf serves at once, eviction starts once it knows the cache.
  let gcTimer: NodeJS.Timeout | undefined;
  let closed = false;
  index
    .load()
    .then(() => evictor.enforce())
    .then(() => {
      if (closed) return;
      evictor.start(EVICTION_CHECK_MS);
      // Expired tags and manifests nothing needs keep the manifest store bounded.
      gcTimer = setInterval(() => {
        collectGarbage(maintenance, { dryRun: false })
          .then((r) => logger.info({ tempFiles: r.tempFiles, expiredTags: r.expiredTags, orphanedTags: r.orphanedTags.length, orphanedManifests: r.orphanedManifests, orphanedLinks: r.orphanedLinks }, 'hourly cache maintenance'))
          .catch((err: unknown) => logger.error({ err: String(err) }, 'cache maintenance failed'));
      }, GC_EVERY_MS);
      gcTimer.unref();
    })
    .catch((err: unknown) => logger.error({ err: String(err) }, 'cannot read the blob cache index'));
  const guard = new CacheWriteGuard({ dataDir: config.dataDir, logger, metrics });
  const accounting = new CacheAccounting({ index, evictor, logger });
  const fills = new FillRegistry({ onCount: (running) => metrics.fillsInFlight.set(running) });
  // One owner of repository links for both services: a manifest links its blobs for the blob service.
  const links = new RepositoryLinks(manifestStore, logger);
  const origins =
    sharedBlobs || cluster ? new FillOrigins({ shared: sharedBlobs?.shared, leases: cluster?.leases, peers: cluster?.peers, metrics, logger }) : undefined;
  const blobs = new BlobService({ store: blobStore, logger, guard, fills, accounting, links, verifiedRangesOnly: config.cache.verifiedRangesOnly, origins });
  const referrers = new ReferrersService({ store: manifestStore, tagTtlSeconds: config.cache.tagTtlSeconds, logger });
  const prefetch = config.upstreams.some((u) => u.prefetch) ? new PrefetchService({ blobs, metrics, logger }) : undefined;
  const manifests = ManifestService.fromConfig(config, manifestStore, logger, links, referrers);
  const tagLists = new TagListService({
    store: manifestStore,
    tagTtlSeconds: config.cache.tagTtlSeconds,
    maxTags: config.cache.tagListMaxTags,
    maxBytes: config.cache.tagListMaxBytes,
    logger,
  });

  const topRepositories = new TopRepositories();
  const observer = new RequestObserver({ logger, metrics, topRepositories });
  const access = await openAccessGate(config, logger, metrics);
  return {
    access,
    logger,
    metrics,
    topRepositories,
    maintenance,
    adminToken: config.admin.token,
    status: {
      version,
      startedAt,
      offline: config.offline,
      blobStore,
      manifestStore,
      sharedBlobStore: sharedBlobs?.shared,
      replicas: cluster?.replicas,
      upstreams,
      metrics,
      topRepositories,
    },
    router,
    blobs,
    accounting,
    manifests,
    tagLists,
    referrers,
    prefetch,
    files: chooseFileSender(config.sendfile, logger),
    observer,
    manifestFastPath: new ManifestFastPath({ router, manifests, observer, gate: access?.gate, manifestServed: (m) => accounting.manifestServed(m) }),
    blobStore,
    manifestStore,
    cluster,
    async close() {
      closed = true;
      evictor.stop();
      clearInterval(gcTimer);
      await Promise.allSettled(upstreams.map((u) => u.close()));
      await manifestStore.close();
      await hashOffload?.close();
      await cluster?.close();
      sharedBlobs?.close();
      access?.close();
    },
  };
}

/**
 * One request to the bucket as wharf starts, in the background: a wrong endpoint, bucket or key
 * shows in the log at once rather than at the first fill, and the S3 client's first request (its
 * connection, the SDK's lazily built parts: ~30 ms against ~6 for the next) is not a fill's.
 */
function checkSharedBlobsAtStart(shared: Pick<SharedBlobs, 'ping'>, config: Config, logger: Logger): void {
  const where = { bucket: config.blobs.s3?.bucket, endpoint: config.blobs.s3?.endpoint };
  shared.ping().then(
    () => logger.debug(where, 'shared blob store (S3) answered'),
    (err: unknown) => logger.warn({ ...where, err: String(err) }, 'shared blob store (S3) did not answer at start; until it does, blobs are filled from the upstream and not shared'),
  );
}
