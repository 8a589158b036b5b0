// The cache on disk (and in Redis) for commands that work on it without serving: export,
// import, gc, stats. Stores report their errors here instead of being bypassed, and the router
// maps registry names to store keys exactly as `wharf serve` does.
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import type { BlobStore } from '../cache/blob-store.ts';
import type { ManifestStore, RepoKey, StoredManifest } from '../cache/manifest-store.ts';
import type { LocatedImage } from '../cache/located-image.ts';
import { openBlobStore, openCommandManifestStore, openSharedBlobs } from '../cache/open-stores.ts';
import { sharedThrough } from '../cache/shared-through-blob-store.ts';
import { Metrics } from '../metrics/metrics.ts';
import { locateImage } from '../proxy/locate-image.ts';
import { routerFromConfig } from '../proxy/upstream-router.ts';
import { ReferrersService } from '../proxy/referrers-service.ts';

export interface Cache {
  readonly blobStore: BlobStore;
  readonly manifestStore: ManifestStore;
  /** Store key and reference for an image reference such as alpine:3.20 or ghcr.io/o/i@sha256:... */
  locate(text: string): LocatedImage;
  /** A manifest with a `subject`, now held for repo: listed among its subject's referrers, as a fetched one is. */
  recordReferrer(repo: RepoKey, manifest: StoredManifest): Promise<void>;
  close(): Promise<void>;
}

export async function openCache(config: Config, logger: Logger): Promise<Cache> {
  const manifestStore = await openCommandManifestStore(config, logger);
  const router = routerFromConfig(config);
  const referrers = new ReferrersService({ store: manifestStore, tagTtlSeconds: config.cache.tagTtlSeconds, logger });
  const local = openBlobStore(config);
  // With blobs.s3, what the cluster holds: read from S3 what this disk lacks, publish what is written.
  const shared = await openSharedBlobs(config, logger, new Metrics({ processMetrics: false }));
  return {
    blobStore: shared ? sharedThrough(local, shared.shared) : local,
    manifestStore,
    locate: (text) => locateImage(router, text),
    recordReferrer: (repo, manifest) => referrers.recordHeld(repo, manifest),
    close: async () => {
      shared?.close();
      await manifestStore.close();
    },
  };
}
