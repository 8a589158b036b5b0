// A fault-injecting TCP proxy on 127.0.0.1 between wharf and a test upstream, switched at run
// time: added latency, a bandwidth cap, refused connections, a blackhole (accepts, never
// answers), a reset after N response bytes, and one corrupted response byte. Working at the
// TCP level means wharf sees exactly what a broken network or a crashed upstream looks like.
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { drained } from '../../src/http/follow-fill.ts';

export type FaultMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'refuse' }
  | { readonly kind: 'blackhole' }
  /** Destroys the connection (RST) once this many response bytes have passed on it. */
  | { readonly kind: 'reset-after'; readonly bytes: number }
  /** Flips the response byte at this offset of each connection's response stream. */
  | { readonly kind: 'corrupt-after'; readonly bytes: number };

export interface TcpFaults {
  readonly url: string;
  readonly port: number;
  setMode(mode: FaultMode): Promise<void>;
  /**
   * Round-trip delay: request bytes reach the upstream this much later, so every exchange (and
   * every new connection's first one) costs it once, while a streaming body is not slowed.
   */
  setLatency(ms: number): void;
  /** Response bytes per second, per connection or for one link all connections share; undefined for no cap. */
  setBandwidth(bytesPerSecond: number | undefined, shared?: boolean): void;
  connections(): number;
  responseBytes(): number;
  stop(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  sent: number; // response bytes passed to the client
}

export async function startTcpFaults(target: { host: string; port: number }): Promise<TcpFaults> {
  let mode: FaultMode = { kind: 'pass' };
  let latencyMs = 0;
  let bytesPerSecond: number | undefined;
  let sharedLink = false;
  // When the shared link is next free (ms): pieces of all connections queue for it in turn.
  let linkFreeAt = 0;
  let accepted = 0;
  let totalBytes = 0;
  const pairs = new Set<Pair>();
  const blackholed = new Set<Socket>();

  const onConnection = (client: Socket) => {
    accepted++;
    if (mode.kind === 'blackhole') {
      // Read and drop whatever the client sends; never answer.
      blackholed.add(client);
      client.on('data', () => undefined).on('error', () => undefined).on('close', () => blackholed.delete(client));
      return;
    }
    const upstream = createConnection(target);
    const pair: Pair = { client, upstream, sent: 0 };
    pairs.add(pair);
    // The client leaving ends both; the upstream closing ends the client only after the pump
    // has delivered what it still holds (a throttled or delayed response).
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', () => undefined); // surfaces in the pump's loop
    const forward = (chunk: Buffer) => {
      if (mode.kind === 'blackhole' || upstream.destroyed) return;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    };
    // A constant delay keeps the bytes in order.
    client.on('data', (chunk: Buffer) => (latencyMs > 0 ? setTimeout(forward, latencyMs, chunk) : forward(chunk)));
    void pumpResponses(pair);
  };

  // Response bytes, in order, with latency, bandwidth cap, reset and corruption applied.
  const pumpResponses = async (pair: Pair) => {
    const { client, upstream } = pair;
    try {
      for await (const data of upstream) {
        let chunk = data as Buffer;
        if (mode.kind === 'blackhole') continue;
        if (mode.kind === 'reset-after' && pair.sent + chunk.length >= mode.bytes) {
          client.write(chunk.subarray(0, Math.max(0, mode.bytes - pair.sent)));
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        if (mode.kind === 'corrupt-after' && pair.sent <= mode.bytes && mode.bytes < pair.sent + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[mode.bytes - pair.sent]! ^= 0xff;
        }
        for (let offset = 0; offset < chunk.length; ) {
          const piece = bytesPerSecond ? chunk.subarray(offset, offset + Math.max(1024, Math.floor(bytesPerSecond / 20))) : chunk.subarray(offset);
          if (bytesPerSecond) await sleep(sharedLink ? reserveLink(piece.length, bytesPerSecond) : (piece.length / bytesPerSecond) * 1000);
          offset += piece.length;
          pair.sent += piece.length;
          totalBytes += piece.length;
          if (!client.write(piece)) await drained(client);
          if (client.destroyed) return;
        }
      }
      client.end();
    } catch {
      client.destroy();
    }
  };

  /** Books the shared link for `bytes`; returns how long to wait until they have crossed it. */
  const reserveLink = (bytes: number, bps: number): number => {
    const now = Date.now();
    linkFreeAt = Math.max(linkFreeAt, now) + (bytes / bps) * 1000;
    return linkFreeAt - now;
  };

  let server: Server = createServer(onConnection);
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  const port = await listen(0);
  const closeListener = () => new Promise<void>((resolve) => server.close(() => resolve()));
  const dropAll = () => {
    for (const p of pairs) p.client.destroy();
    for (const s of blackholed) s.destroy();
  };

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async setMode(next) {
      const wasRefusing = mode.kind === 'refuse';
      mode = next;
      if (next.kind === 'refuse' && !wasRefusing) {
        // A crashed upstream: the port refuses and open connections die.
        dropAll();
        await closeListener();
      } else if (wasRefusing && next.kind !== 'refuse') {
        server = createServer(onConnection);
        await listen(port);
      } else if (next.kind === 'reset-after' || next.kind === 'corrupt-after') {
        // Offsets count from a connection's first response byte: start from fresh connections.
        dropAll();
      } else if (next.kind === 'pass') {
        // Connections stuck in a blackhole stay dead, as after a real network partition.
        for (const s of blackholed) s.destroy();
      }
    },
    setLatency: (ms) => (latencyMs = ms),
    setBandwidth: (bps, shared = false) => {
      bytesPerSecond = bps;
      sharedLink = shared;
    },
    connections: () => accepted,
    responseBytes: () => totalBytes,
    async stop() {
      dropAll();
      if (server.listening) await closeListener();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
