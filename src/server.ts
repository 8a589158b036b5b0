// Starts wharf's HTTP server from a loaded config; used by `wharf serve` and by the tests.
// With threads > 1 the main thread shares the public port (SO_REUSEPORT) with hit threads,
// which hand it what they cannot answer from the cache through a loopback listener.
import { createServer } from 'node:http';
import type { ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import type { Config } from './config/load-config.ts';
import { createApp } from './app.ts';
import { createDeps, type Deps } from './deps.ts';
import { closeGracefully, listen } from './http/listen.ts';
import { registryRequestListener } from './http/request-listener.ts';
import { HitThreads } from './threads/hit-threads.ts';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly deps: Deps;
  close(graceMs?: number): Promise<void>;
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const deps = await createDeps(config, logger);
  const app = createApp(deps);
  const { host, port } = splitListen(config.listen);
  const listener = registryRequestListener(app, deps.manifestFastPath);
  const server: ServerType = createServer(listener);
  const threaded = config.threads > 1;
  const address = await listen(server, { host, port, reusePort: threaded });
  let internal: ServerType | undefined;
  let hitThreads: HitThreads | undefined;
  if (threaded) {
    internal = createServer(listener);
    const internalAddress = await listen(internal, { host: '127.0.0.1', port: 0 });
    hitThreads = await HitThreads.start(config.threads - 1, { config, host, port: address.port, internal: { host: '127.0.0.1', port: internalAddress.port } }, {
      blobsUsed: (digests) => digests.forEach((d) => deps.accounting.used(d)),
      pulled: (repositories) => repositories.forEach((r) => deps.topRepositories.record(r)),
      failed: (err) => logger.error({ err: String(err) }, 'a hit thread failed; the other threads carry on'),
    });
    for (const source of hitThreads.metricsSources) deps.metrics.addRemote(source);
  }
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;
  logger.info({ url, threads: config.threads, upstreams: config.upstreams.map((u) => u.name), store: deps.manifestStore.backend, blobSend: deps.files.method }, 'wharf listening');
  return {
    url,
    port: address.port,
    deps,
    /** Stops accepting, lets running responses and fills finish for up to graceMs, then closes. */
    async close(graceMs = 10_000) {
      // Hit threads first: what they handed over is still answered by the internal listener.
      await Promise.all([closeGracefully(server, graceMs), hitThreads?.stop(graceMs)]);
      if (internal) await closeGracefully(internal, graceMs);
      await Promise.race([deps.blobs.settled(), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
      await deps.close();
    },
  };
}

export function splitListen(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return { host: host === '' ? '0.0.0.0' : host, port: Number(listen.slice(colon + 1)) };
}
