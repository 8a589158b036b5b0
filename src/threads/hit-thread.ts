// Entry point of a hit thread (a worker thread started by hit-threads.ts): builds read-only
// views of the shared caches, listens on the public port beside the main thread (SO_REUSEPORT:
// the kernel spreads connections over the threads) and answers until told to close.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createServer } from 'node:http';
import { createLogger } from '../logger.ts';
import { Metrics } from '../metrics/metrics.ts';
import { openBlobStore, openManifestStore } from '../cache/open-stores.ts';
import { ManifestService } from '../proxy/manifest-service.ts';
import { routerFromConfig } from '../proxy/upstream-router.ts';
import { listen, closeGracefully } from '../http/listen.ts';
import { chooseFileSender } from '../http/file-sender.ts';
import { ManifestFastPath } from '../http/manifest-fast-path.ts';
import { RequestObserver } from '../http/request-observer.ts';
import { registryRequestListener } from '../http/request-listener.ts';
import { createHitApp } from './hit-app.ts';
import { Forwarder } from './forward.ts';
import { HitReporter } from './hit-reporter.ts';
import type { HitThreadData, HitThreadMessage, MainThreadMessage } from './messages.ts';

const port = parentPort!;
const { config, host, port: publicPort, internal } = workerData as HitThreadData;
const send = (message: HitThreadMessage) => port.postMessage(message);

const logger = createLogger(config.logLevel).child({ thread: threadId });
const metrics = new Metrics({ processMetrics: false });
const store = await openManifestStore(config, logger, metrics, 'reader');
const reporter = new HitReporter(send);
const forwarder = new Forwarder(internal);
const router = routerFromConfig(config);
// Pulls are counted by the main thread's book, through the reporter.
const observer = new RequestObserver({ logger, metrics, topRepositories: reporter });
const manifests = new ManifestService({ store, memory: store, tagTtlSeconds: config.cache.tagTtlSeconds, logger });
const app = createHitApp({
  logger,
  manifests,
  blobStore: openBlobStore(config),
  files: chooseFileSender(config.sendfile, logger),
  router,
  forwarder,
  reporter,
  observer,
});
const fastPath = new ManifestFastPath({ router, manifests, observer, manifestServed: (m) => reporter.manifestServed(m) });
const server = createServer(registryRequestListener(app, fastPath));
await listen(server, { host, port: publicPort, reusePort: true });

port.on('message', (message: MainThreadMessage) => {
  if (message.type === 'metrics') {
    void metrics.registry.getMetricsAsJSON().then((json) => send({ type: 'metrics', id: message.id, metrics: json }));
    return;
  }
  void closeGracefully(server, message.graceMs).then(async () => {
    reporter.stop();
    forwarder.close();
    await store.close();
    send({ type: 'closed' });
    port.close();
  });
});
send({ type: 'ready' });
