// One keep-alive connection to a plain-HTTP upstream, read with Node's `onread`: every read lands
// in one buffer the connections of a transport share (plain-exchange.ts) and is handed on before
// the next read, so receiving allocates nothing per read; a fill's body lands in the fill's own
// staging memory instead (BodySink.readRegion). It carries one GET at a time: the head
// is parsed here (response-head.ts), the body framed (body-framing.ts) and passed to its
// PlainBody. Deadlines as undici's: connect, headers (request sent to head read), body idle
// (longest silence between reads; not counted while the reader holds the body back).
import { connect, type LookupFunction, type Socket } from 'node:net';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { errors } from 'undici';
import { BodyFramer } from './body-framing.ts';
import { PlainBody, type BodySource } from './plain-body.ts';
import { MAX_HEAD_BYTES, parseResponseHead } from './response-head.ts';
import type { Hop, HopAnswer } from './upstream-transport.ts';
import { bareHost } from './dial-policy.ts';

export interface PlainTimeouts {
  readonly connectMs: number;
  readonly headersMs: number;
  readonly bodyIdleMs: number;
}

/** A reused connection the server had closed before answering: the request may go again, on a fresh one. */
export class StaleConnectionError extends errors.SocketError {}

type Phase = 'connecting' | 'idle' | 'head' | 'body' | 'closed';

interface Waiting {
  resolve(answer: HopAnswer): void;
  reject(err: unknown): void;
}

export class PlainConnection implements BodySource {
  readonly key: string;
  readonly #socket: Socket;
  readonly #timeouts: PlainTimeouts;
  /** Called when a body ended cleanly on a connection that may carry another request. */
  readonly #onReusable: (connection: PlainConnection) => void;
  #phase: Phase = 'connecting';
  #exchanges = 0;
  #head = '';
  #waiting: Waiting | undefined;
  #framer: BodyFramer | undefined;
  #body: PlainBody | undefined;
  #keepAlive = false;
  #timer: NodeJS.Timeout | undefined;
  #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.#fail(this.#signal?.reason ?? new errors.RequestAbortedError());

  constructor(url: URL, options: { timeouts: PlainTimeouts; lookup: LookupFunction; readBuffer: Buffer; onReusable: (c: PlainConnection) => void }) {
    this.key = url.host;
    this.#timeouts = options.timeouts;
    this.#onReusable = options.onReusable;
    this.#socket = connect({
      host: bareHost(url.hostname),
      port: Number(url.port || 80),
      lookup: options.lookup,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
      onread: {
        // Asked after every read: a fill's free staging memory while its body is read (no copy), else the shared buffer.
        buffer: () => (this.#phase === 'body' ? this.#body?.readRegion() : undefined) ?? options.readBuffer,
        callback: (n: number, buf: Uint8Array) => this.#read(buf.subarray(0, n)),
      },
    });
    this.#socket.on('end', () => this.#closed(undefined));
    this.#socket.on('error', (err) => this.#closed(err));
    this.#socket.on('close', () => this.#closed(undefined));
  }

  get usable(): boolean {
    return this.#phase === 'idle' && !this.#socket.destroyed;
  }

  /** Resolves once connected; rejects with the connect error or timeout (the socket is gone then). */
  opened(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#socket.off('connect', onConnect);
        this.#socket.off('error', done);
        this.#socket.off('close', onClose);
        if (err === undefined) {
          this.#phase = 'idle';
          resolve();
          return;
        }
        this.#phase = 'closed';
        this.#socket.destroy();
        reject(err);
      };
      const onConnect = () => done();
      const onClose = () => done(new errors.SocketError('closed while connecting'));
      const onAbort = () => done(signal?.reason ?? new errors.RequestAbortedError());
      const { connectMs } = this.#timeouts;
      const timer = setTimeout(() => done(new errors.ConnectTimeoutError(`Connect Timeout Error (attempted address: ${this.key}, timeout: ${connectMs}ms)`)), connectMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#socket.once('connect', onConnect);
      this.#socket.once('error', done);
      this.#socket.once('close', onClose);
    });
  }

  /** Sends one GET; resolves at its answer's head. Only on an idle connection. */
  send(hop: Hop): Promise<HopAnswer> {
    if (!this.usable) return Promise.reject(new StaleConnectionError('connection not usable'));
    const text = requestText(hop); // throws on a header that could split the request
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#phase = 'head';
      this.#exchanges++;
      this.#signal = hop.signal;
      if (hop.signal?.aborted) return this.#onAbort();
      hop.signal?.addEventListener('abort', this.#onAbort, { once: true });
      this.#arm(this.#timeouts.headersMs, () => new errors.HeadersTimeoutError('Headers Timeout Error'));
      this.#socket.write(text, 'latin1');
      this.#socket.resume();
    });
  }

  destroy(): void {
    this.#phase = 'closed';
    clearTimeout(this.#timer);
    this.#socket.destroy();
  }

  // BodySource: the body's reader holds the socket back, lets it go, or gives the body up.
  pause(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#socket.pause();
  }

  resume(): void {
    if (this.#phase !== 'body') return;
    this.#arm(this.#timeouts.bodyIdleMs, () => new errors.BodyTimeoutError('Body Timeout Error'));
    this.#socket.resume();
  }

  abandon(): void {
    if (this.#phase === 'body') this.#done(false);
  }

  #read(bytes: Uint8Array): boolean {
    if (this.#phase === 'head') return this.#readHead(bytes);
    if (this.#phase === 'body') return this.#readBody(bytes);
    // Bytes nobody asked for (idle, or past a body): not a server to talk to again.
    this.destroy();
    return false;
  }

  #readHead(bytes: Uint8Array): boolean {
    const before = this.#head.length;
    // Only as much as a head may be: the rest of a 1 MiB read is body, not text to make.
    const looked = Math.min(bytes.byteLength, MAX_HEAD_BYTES + 4 - before);
    this.#head += Buffer.from(bytes.buffer, bytes.byteOffset, Math.max(0, looked)).toString('latin1');
    const end = this.#head.indexOf('\r\n\r\n', Math.max(0, before - 3));
    if (end === -1) {
      if (this.#head.length > MAX_HEAD_BYTES) this.#fail(new errors.HeadersOverflowError('response head too large'));
      return true;
    }
    const text = this.#head.slice(0, end);
    const rest = bytes.subarray(end + 4 - before);
    this.#head = '';
    if (end > MAX_HEAD_BYTES) return this.#fail(new errors.HeadersOverflowError('response head too large'));
    let head;
    try {
      head = parseResponseHead(text);
    } catch (err) {
      return this.#fail(err);
    }
    const framer = new BodyFramer(head.framing);
    this.#framer = framer;
    this.#keepAlive = head.keepAlive;
    // The body's bytes that came with the head wait as one copy until the body is read.
    const early: Buffer[] = [];
    try {
      if (framer.feed(rest, (b) => early.push(Buffer.from(b))) < rest.length) this.#keepAlive = false;
    } catch (err) {
      return this.#fail(err);
    }
    const body = new PlainBody(this, early.length === 1 ? early[0] : Buffer.concat(early));
    this.#body = body;
    this.#phase = 'body';
    clearTimeout(this.#timer);
    const waiting = this.#waiting!;
    this.#waiting = undefined;
    waiting.resolve({ statusCode: head.statusCode, headers: head.headers, body: body as unknown as HopAnswer['body'] });
    if (framer.done) {
      this.#done(this.#keepAlive);
      return true;
    }
    // Nothing more is read until the body is.
    this.pause();
    return false;
  }

  #readBody(bytes: Uint8Array): boolean {
    this.#timer?.refresh();
    const body = this.#body!;
    try {
      if (this.#framer!.feed(bytes, (b) => body.deliver(b)) < bytes.length) this.#keepAlive = false;
    } catch (err) {
      return this.#fail(err);
    }
    if (this.#framer!.done) this.#done(this.#keepAlive);
    return true;
  }

  /** The socket ended, failed or closed. */
  #closed(err: Error | undefined): void {
    if (this.#phase === 'head') {
      // Nothing of an answer came on a connection that had served before: the server closed it idle.
      const stale = this.#exchanges > 1 && this.#head === '';
      this.#fail(stale ? new StaleConnectionError('kept-alive connection closed before an answer') : (err ?? new errors.SocketError('other side closed')));
      return;
    }
    if (this.#phase === 'body') {
      const early = this.#framer!.closed();
      if (err ?? early) this.#fail(err ?? early);
      else this.#done(false);
      return;
    }
    if (this.#phase !== 'connecting') this.destroy();
  }

  /** The exchange failed: its waiter or its body hears why; the connection is gone. Returns false (for #read). */
  #fail(err: unknown): false {
    const waiting = this.#waiting;
    const body = this.#body;
    const phase = this.#phase;
    this.#finishExchange();
    this.destroy();
    if (phase === 'head') waiting?.reject(err);
    else if (phase === 'body') body?.fail(err instanceof Error ? err : new Error(String(err)));
    return false;
  }

  /** The body is over (read to its end, or given up); reused only when it may be. */
  #done(reusable: boolean): void {
    const body = this.#body;
    const ended = this.#framer?.done === true;
    this.#finishExchange();
    if (ended) body?.finish();
    if (!reusable || !ended) {
      this.destroy();
      return;
    }
    this.#phase = 'idle';
    this.#socket.resume(); // read while idle, to see the server close it
    this.#onReusable(this);
  }

  #finishExchange(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#signal = undefined;
    this.#body = undefined;
    this.#framer = undefined;
  }

  #arm(ms: number, error: () => Error): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#fail(error()), ms);
  }
}

/** The request's bytes; a header name or value that could end the head early is refused. */
function requestText(hop: Hop): string {
  let text = `GET ${hop.url.pathname}${hop.url.search} HTTP/1.1\r\nhost: ${hop.url.host}\r\n`;
  for (const [name, value] of Object.entries(hop.headers)) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    text += `${name}: ${value}\r\n`;
  }
  return `${text}\r\n`;
}
