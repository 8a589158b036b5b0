// Entry point of a hit thread (a worker thread started by hit-threads.ts): builds read-only
// views of the shared caches, listens on the public port beside the main thread (SO_REUSEPORT:
// the kernel spreads connections over the threads) and answers until told to close.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createServer } from 'node:http';
import { createLogger } from '../logger.ts';
import { createHitDeps } from './hit-deps.ts';
import { listen, closeGracefully } from '../http/listen.ts';
import { registryRequestListener } from '../http/request-listener.ts';
import { createHitApp } from './hit-app.ts';
import { Forwarder } from './forward.ts';
import { HitReporter } from './hit-reporter.ts';
import type { HitThreadData, HitThreadMessage, MainThreadMessage } from './messages.ts';

const port = parentPort!;
const { config, host, port: publicPort, internal } = workerData as HitThreadData;
const send = (message: HitThreadMessage) => port.postMessage(message);

const logger = createLogger(config.logLevel).child({ thread: threadId });
const reporter = new HitReporter(send);
const forwarder = new Forwarder(internal);
const deps = await createHitDeps(config, logger, { forwarder, reporter });
const { metrics } = deps;
const server = createServer(registryRequestListener(createHitApp(deps), deps.fastPath));
await listen(server, { host, port: publicPort, reusePort: true });

port.on('message', (message: MainThreadMessage) => {
  if (message.type === 'metrics') {
    void metrics.registry.getMetricsAsJSON().then((json) => send({ type: 'metrics', id: message.id, metrics: json }));
    return;
  }
  void closeGracefully(server, message.graceMs).then(async () => {
    reporter.stop();
    forwarder.close();
    await deps.close();
    send({ type: 'closed' });
    port.close();
  });
});
send({ type: 'ready' });
