// The cache on disk (and in Redis) for commands that work on it without serving: export,
// import, gc, stats. Stores report their errors here instead of being bypassed, and the router
// maps registry names to store keys exactly as `wharf serve` does.
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import type { BlobStore } from '../cache/blob-store.ts';
import type { ManifestStore } from '../cache/manifest-store.ts';
import type { LocatedImage } from '../cache/located-image.ts';
import { openBlobStore, openCommandManifestStore } from '../cache/open-stores.ts';
import { locateImage } from '../proxy/locate-image.ts';
import { routerFromConfig } from '../proxy/upstream-router.ts';

export interface Cache {
  readonly blobStore: BlobStore;
  readonly manifestStore: ManifestStore;
  /** Store key and reference for an image reference such as alpine:3.20 or ghcr.io/o/i@sha256:... */
  locate(text: string): LocatedImage;
  close(): Promise<void>;
}

export async function openCache(config: Config, logger: Logger): Promise<Cache> {
  const manifestStore = await openCommandManifestStore(config, logger);
  const router = routerFromConfig(config);
  return {
    blobStore: openBlobStore(config),
    manifestStore,
    locate: (text) => locateImage(router, text),
    close: () => manifestStore.close(),
  };
}
