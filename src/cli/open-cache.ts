// The cache on disk (and in Redis) for commands that work on it without serving: export,
// import, gc, stats. Stores report their errors here instead of being bypassed, and the router
// maps registry names to store keys exactly as `wharf serve` does.
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import type { BlobStore } from '../cache/blob-store.ts';
import type { ManifestStore } from '../cache/manifest-store.ts';
import { locateImage } from '../proxy/locate-image.ts';
import type { LocatedImage } from '../cache/located-image.ts';
import { createDiskBlobStore } from '../cache/disk-blob-store.ts';
import { EmbeddedManifestStore } from '../cache/embedded-manifest-store.ts';
import { RedisManifestStore } from '../cache/redis-manifest-store.ts';
import { defaultUpstreamName, UpstreamRouter, type RoutableUpstream } from '../proxy/upstream-router.ts';
import { join } from 'node:path';

export interface Cache {
  readonly blobStore: BlobStore;
  readonly manifestStore: ManifestStore;
  /** Store key and reference for an image reference such as alpine:3.20 or ghcr.io/o/i@sha256:... */
  locate(text: string): LocatedImage;
  close(): Promise<void>;
}

export async function openCache(config: Config, logger: Logger): Promise<Cache> {
  const blobStore = createDiskBlobStore(config.dataDir);
  let manifestStore: ManifestStore;
  if (config.redis.url) {
    const { Redis } = await import('ioredis');
    const redis = new Redis(config.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', (err) => logger.debug({ err: err.message }, 'redis'));
    await redis.connect();
    manifestStore = new RedisManifestStore(redis, config.redis.keyPrefix, { ownsClient: true });
  } else {
    manifestStore = new EmbeddedManifestStore(join(config.dataDir, 'manifests'));
  }
  const upstreams: RoutableUpstream[] = config.upstreams.map((u) => ({ name: u.name, libraryPrefix: u.libraryPrefix }));
  const router = new UpstreamRouter(upstreams, defaultUpstreamName(config.upstreams));
  return {
    blobStore,
    manifestStore,
    locate: (text) => locateImage(router, text),
    close: () => manifestStore.close(),
  };
}
