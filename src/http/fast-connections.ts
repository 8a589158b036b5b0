// Connections of a plain HTTP server read by wharf before Node's HTTP machinery sees them. Each
// request is read with a strict reader (simple-request.ts); while every request on a connection
// is a cached manifest, the manifest fast path writes its answer straight to the socket. Node's
// request and response objects, its header checks and its per-request listeners were most of a
// cached manifest's cost (docs/benchmarks.md). The first request that is anything else (a blob,
// a miss, a body, a request this reader does not take, a head still unfinished past Node's
// headersTimeout) hands the connection to Node for good, its unread bytes first, and Node goes
// on as if it had had the connection from the start: its parser, limits, timeouts and errors
// apply from there.
import { maxHeaderSize, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ManifestFastPath } from './manifest-fast-path.ts';
import { INCOMPLETE, NOT_SIMPLE, readSimpleRequest } from './simple-request.ts';
import { SharedReadBuffer } from './shared-read-buffer.ts';
import { ownBytes } from '../own-bytes.ts';

type ConnectionListener = (this: Server, socket: Socket) => void;

interface FastSocket {
  readonly socket: Socket;
  /** Bytes read and not yet answered: the start of a head, or requests held while the socket drains. */
  unread: Buffer | undefined;
  /** Reading is paused until the socket drains. */
  paused: boolean;
  /** When the head now in `unread` began to arrive, if one is incomplete. */
  partialSince: number | undefined;
  /** What this reader listens to on the socket, taken off again at the hand-over. */
  readonly listeners: ReadonlyArray<readonly [event: string, listener: (...args: any[]) => void]>;
  /** An answer has gone out: the keep-alive clock runs, not the first request's. */
  answered: boolean;
  /** Reads land in the shared buffer (not 'data'): bytes kept past a read are copies. */
  readonly shared: boolean;
}

export class FastConnections {
  readonly #server: Server;
  readonly #fastPath: ManifestFastPath;
  readonly #nodeListener: ConnectionListener;
  readonly #held = new Set<FastSocket>();
  readonly #tail = new KeepAliveTail();
  readonly #reads: SharedReadBuffer | undefined;
  #closing = false;

  /**
   * Takes over `server`'s connections; Node's own listener is kept for the hand-over.
   * sharedReads false: connections read through 'data' as Node delivers it (tests run both ways).
   */
  constructor(server: Server, fastPath: ManifestFastPath, options: { sharedReads?: boolean } = {}) {
    const [nodeListener, ...others] = server.listeners('connection') as ConnectionListener[];
    if (nodeListener === undefined || others.length > 0) throw new Error('fast connections need the HTTP server as Node built it');
    // Counting requests per connection is Node's; its answers would then differ from these.
    if (server.maxRequestsPerSocket) throw new Error('fast connections do not count requests per connection');
    server.removeListener('connection', nodeListener);
    server.on('connection', (socket: Socket) => this.#adopt(socket));
    this.#server = server;
    this.#fastPath = fastPath;
    this.#nodeListener = nodeListener;
    this.#reads = options.sharedReads === false ? undefined : new SharedReadBuffer();
  }

  /** Connections this reader holds now (handed-over ones are Node's). */
  get held(): number {
    return this.#held.size;
  }

  /**
   * For a graceful close: no connection held here has a request in progress (each answer is
   * written whole when its request is read; at most the start of a head is held), so each is
   * ended once its answers are out, and no request read later is answered.
   */
  closeIdle(): void {
    this.#closing = true;
    for (const held of this.#held) held.socket.end(() => held.socket.destroy());
  }

  /** When the grace is over: cuts what is left. */
  closeAll(): void {
    this.#closing = true;
    for (const held of this.#held) held.socket.destroy();
  }

  #adopt(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const shared = this.#reads?.attach(socket, (bytes) => this.#readShared(held, bytes)) ?? false;
    const held: FastSocket = {
      socket,
      unread: undefined,
      paused: false,
      partialSince: undefined,
      listeners: [
        ...(shared ? [] : [['data', (chunk: Buffer) => this.#read(held, chunk)] as const]),
        ['drain', () => this.#drained(held)],
        ['end', () => socket.end()],
        // A head begun and not finished: Node's to time out (with its 408), as if it had read it.
        ['timeout', () => (held.unread === undefined ? socket.destroy() : this.#handOver(held, held.unread))],
        ['close', () => this.#held.delete(held)],
        ['error', () => socket.destroy()],
      ],
      answered: false,
      shared,
    };
    this.#held.add(held);
    for (const [event, listener] of held.listeners) socket.on(event, listener);
    // Node's clocks: headersTimeout for the first request, then keepAliveTimeout (plus its
    // buffer) between requests, and a connection held here is always between requests. Reads
    // and writes restart the clock.
    socket.setTimeout(this.#server.headersTimeout);
  }

  #read(held: FastSocket, chunk: Buffer): void {
    const unread = held.unread;
    held.unread = undefined;
    this.#answer(held, unread === undefined ? chunk : Buffer.concat([unread, chunk]), false);
  }

  /** A read into the shared buffer; false stops reading (the socket is paused until it drains). */
  #readShared(held: FastSocket, bytes: Buffer): boolean {
    const unread = held.unread;
    held.unread = undefined;
    if (unread === undefined) this.#answer(held, bytes, true);
    else this.#answer(held, Buffer.concat([unread, bytes]), false);
    return !held.paused;
  }

  #drained(held: FastSocket): void {
    if (!held.paused) return;
    const unread = held.unread!;
    held.paused = false;
    held.unread = undefined;
    held.socket.resume();
    this.#answer(held, unread, false);
  }

  /** inShared: bytes is the shared read buffer's, so what is kept of it is copied. */
  #answer(held: FastSocket, bytes: Buffer, inShared: boolean): void {
    const { socket } = held;
    // Already ended (closeIdle): a request that crossed the close is not read, as Node does not
    // read one on a connection it closed as idle.
    if (this.#closing) return;
    const server = this.#server;
    const maxHead = (server as { maxHeaderSize?: number }).maxHeaderSize || maxHeaderSize;
    const maxHeaders = server.maxHeadersCount || 2000;
    let at = 0;
    while (at < bytes.length) {
      if (socket.writableNeedDrain) {
        // The client reads slower than it asks: hold the rest until its answers have gone out.
        held.unread = kept(bytes.subarray(at), inShared);
        held.paused = true;
        socket.pause();
        return;
      }
      const request = readSimpleRequest(bytes, at, maxHead, maxHeaders);
      if (request === INCOMPLETE) {
        // The rest of a head split across reads (a pipelined batch cut by a read, a slow
        // client). Node's clock for a head applies: past it, the head is Node's to refuse.
        const now = Date.now();
        held.partialSince ??= now;
        if (now - held.partialSince > server.headersTimeout) break;
        held.unread = kept(bytes.subarray(at), inShared);
        return;
      }
      if (request === NOT_SIMPLE || !this.#fastPath.answerOnSocket(request, socket, this.#tail.now(server.keepAliveTimeout))) break;
      held.partialSince = undefined;
      at += request.length;
      if (!held.answered) {
        held.answered = true;
        const keepAlive = server.keepAliveTimeout;
        socket.setTimeout(keepAlive > 0 ? keepAlive + (server.keepAliveTimeoutBuffer ?? 1000) : 0);
      }
    }
    if (at < bytes.length) this.#handOver(held, kept(bytes.subarray(at), inShared));
  }

  #handOver(held: FastSocket, unread: Buffer): void {
    const { socket } = held;
    this.#held.delete(held);
    for (const [event, listener] of held.listeners) socket.removeListener(event, listener);
    if (held.shared) this.#reads!.detach(socket);
    socket.setTimeout(0);
    // Paused, the unread bytes wait in the socket's buffer while Node attaches its parser; the
    // resume hands them to it on the next tick, before any new read from the network.
    socket.pause();
    socket.unshift(unread);
    this.#nodeListener.call(this.#server, socket);
    socket.resume();
  }
}

/** Bytes kept past a read: copied out of the shared read buffer, which the next read overwrites. */
function kept(rest: Buffer, inShared: boolean): Buffer {
  return inShared ? Buffer.from(rest) : rest;
}

/**
 * The lines Node adds after a keep-alive answer's own headers (Date, Connection, Keep-Alive),
 * then the blank line: made once a second, as Node makes its Date, not once per answer.
 */
class KeepAliveTail {
  #second = -1;
  #keepAliveMs = -1;
  #value: Buffer = Buffer.alloc(0);

  now(keepAliveMs: number): Buffer {
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.#second || keepAliveMs !== this.#keepAliveMs) {
      this.#second = second;
      this.#keepAliveMs = keepAliveMs;
      const timeout = keepAliveMs > 0 ? `Keep-Alive: timeout=${Math.floor(keepAliveMs / 1000)}\r\n` : '';
      this.#value = ownBytes(`Date: ${new Date(second * 1000).toUTCString()}\r\nConnection: keep-alive\r\n${timeout}\r\n`, 'latin1');
    }
    return this.#value;
  }
}
