// Entry point of a hit thread (a worker thread started by hit-threads.ts): builds read-only
// views of the shared caches, listens on the public ports beside the main thread (SO_REUSEPORT:
// the kernel spreads connections over the threads), plain HTTP and HTTPS as configured, and
// answers until told to close.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createServer } from 'node:http';
import type { ServerType } from '@hono/node-server';
import { createLogger } from '../logger.ts';
import { createHitDeps } from './hit-deps.ts';
import { listen, closeGracefully } from '../http/listen.ts';
import { FastConnections } from '../http/fast-connections.ts';
import { registryRequestListener } from '../http/request-listener.ts';
import { TlsServer } from '../http/tls-server.ts';
import { createHitApp } from './hit-app.ts';
import { Forwarder } from './forward.ts';
import { HitReporter } from './hit-reporter.ts';
import { PostedLogLines } from './posted-log-lines.ts';
import type { HitThreadData, HitThreadMessage, MainThreadMessage } from './messages.ts';

const port = parentPort!;
const { config, plain, tls, internal, forwardSecret } = workerData as HitThreadData;
const send = (message: HitThreadMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

const logLines = new PostedLogLines(send);
const logger = createLogger(config.logLevel, logLines).child({ thread: threadId });
const reporter = new HitReporter(send);
const forwarder = new Forwarder(internal, forwardSecret);
const deps = await createHitDeps(config, logger, { forwarder, reporter });
const { metrics } = deps;
const listener = registryRequestListener(createHitApp(deps), deps.fastPath);
const servers: ServerType[] = [];
/** Connections read before Node's server, per server that has them (plain HTTP). */
const fastConnections = new Map<ServerType, FastConnections>();
if (plain) {
  const server = createServer(listener);
  fastConnections.set(server, new FastConnections(server, deps.fastPath));
  servers.push(server);
  await listen(server, { host: plain.host, port: plain.port, reusePort: true });
}
// The main thread watches the TLS files and sends what it reloaded: one check, one log line.
const tlsServer = tls && config.tls ? new TlsServer(config.tls, tls.material, Buffer.from(tls.ticketKeys), listener, logger) : undefined;
if (tls && tlsServer) {
  servers.push(tlsServer.server);
  await listen(tlsServer.server, { host: tls.host, port: tls.port, reusePort: true });
}

port.on('message', (message: MainThreadMessage) => {
  if (message.type === 'metrics') {
    void metrics.registry.getMetricsAsJSON().then((json) => send({ type: 'metrics', id: message.id, metrics: json }));
    return;
  }
  if (message.type === 'tls') {
    tlsServer?.use(message.material);
    return;
  }
  if (message.type === 'log-buffer') {
    logLines.giveBack(message.buffer);
    return;
  }
  void Promise.all(servers.map((s) => closeGracefully(s, message.graceMs, fastConnections.get(s)))).then(async () => {
    reporter.stop();
    forwarder.close();
    await deps.close();
    logLines.flush();
    send({ type: 'closed' });
    port.close();
  });
});
send({ type: 'ready' });
