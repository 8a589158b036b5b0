// A hit thread's parts: read-only views of the caches the main thread shares (it alone writes
// and cleans up), the same manifest rules, and the main thread behind forwarder and reporter.
// Kept apart from src/deps.ts so that a hit thread loads only what it serves with.
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import { openBlobStore, openManifestStore } from '../cache/open-stores.ts';
import { Metrics } from '../metrics/metrics.ts';
import { ManifestService } from '../proxy/manifest-service.ts';
import { RepositoryLinks } from '../proxy/repository-links.ts';
import { openAccessGate } from '../auth/open-access-gate.ts';
import { routerFromConfig } from '../proxy/upstream-router.ts';
import { chooseFileSender } from '../http/file-sender.ts';
import { ManifestFastPath } from '../http/manifest-fast-path.ts';
import { RequestObserver } from '../http/request-observer.ts';
import type { HitAppDeps } from './hit-app.ts';
import type { Forwarder } from './forward.ts';
import type { HitReporter } from './hit-reporter.ts';

export interface HitDeps extends HitAppDeps {
  readonly metrics: Metrics;
  readonly fastPath: ManifestFastPath;
  close(): Promise<void>;
}

export async function createHitDeps(config: Config, logger: Logger, mainThread: { forwarder: Forwarder; reporter: HitReporter }): Promise<HitDeps> {
  const metrics = new Metrics({ processMetrics: false });
  const store = await openManifestStore(config, logger, metrics, 'reader');
  const router = routerFromConfig(config);
  const { forwarder, reporter } = mainThread;
  // Pulls are counted by the main thread's book, through the reporter.
  const observer = new RequestObserver({ logger, metrics, topRepositories: reporter });
  const links = new RepositoryLinks(store, logger);
  const manifests = ManifestService.fromConfig(config, store, logger, links);
  const access = await openAccessGate(config, logger, metrics);
  const gate = access?.gate;
  return {
    gate,
    logger,
    metrics,
    manifests,
    links,
    blobStore: openBlobStore(config),
    files: chooseFileSender(config.sendfile, logger),
    router,
    forwarder,
    reporter,
    observer,
    fastPath: new ManifestFastPath({ router, manifests, observer, gate, manifestServed: (m) => reporter.manifestServed(m) }),
    close: async () => {
      access?.close();
      await store.close();
    },
  };
}

