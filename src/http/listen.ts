// Listening and closing for wharf's HTTP servers (the public one, the main thread's internal one
// for hit threads, and each hit thread's).
import type { AddressInfo, ListenOptions } from 'node:net';
import type { ServerType } from '@hono/node-server';

export async function listen(server: ServerType, options: ListenOptions): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

/** Connections a server's own tracking does not see (fast-connections.ts). */
export interface HeldConnections {
  closeIdle(): void;
  closeAll(): void;
}

/** Stops accepting, lets running responses finish for up to graceMs, then cuts what is left. */
export async function closeGracefully(server: ServerType, graceMs: number, held?: HeldConnections): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Idle keep-alive sockets would hold close() open.
  if ('closeIdleConnections' in server) server.closeIdleConnections();
  held?.closeIdle();
  const grace = setTimeout(() => {
    if ('closeAllConnections' in server) server.closeAllConnections();
    held?.closeAll();
  }, graceMs);
  await closed;
  clearTimeout(grace);
}
