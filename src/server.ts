// Starts wharf's HTTP server from a loaded config; used by `wharf serve` and by the tests.
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import type { Config } from './config/load-config.ts';
import { createApp } from './app.ts';
import { createDeps, type Deps } from './deps.ts';

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
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port }, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;
  logger.info({ url, upstreams: config.upstreams.map((u) => u.name), store: deps.manifestStore.backend }, 'wharf listening');
  return {
    url,
    port: address.port,
    deps,
    /** Stops accepting, lets running responses and fills finish for up to graceMs, then closes. */
    async close(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle keep-alive sockets would hold close() open.
      if ('closeIdleConnections' in server) server.closeIdleConnections();
      const grace = setTimeout(() => {
        if ('closeAllConnections' in server) server.closeAllConnections();
      }, graceMs);
      await closed;
      await Promise.race([deps.blobs.settled(), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
      clearTimeout(grace);
      await deps.close();
    },
  };
}

export function splitListen(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return { host: host === '' ? '0.0.0.0' : host, port: Number(listen.slice(colon + 1)) };
}
