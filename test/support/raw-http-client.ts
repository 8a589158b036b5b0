// An HTTP/1.1 client on raw TCP, for requests no well-behaved client sends: any bytes in the
// request line and headers, repeated headers, unknown methods, absolute and asterisk forms,
// HTTP/1.0. One RawConnection is one keep-alive socket carrying one request at a time; it
// reconnects when the server closed it. Answers are parsed just enough to frame them
// (Content-Length, chunked, or until close; none for HEAD, 1xx, 204 and 304), interim 1xx
// answers are skipped. Pipelined requests are written at once and their answers read in turn.
// Connects to 127.0.0.1 only.
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  /** 0 when the connection ended (or timed out) before a whole answer arrived. */
  readonly status: number;
  /** Lowercased names, in order, repeats kept. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The head as sent (latin1), status line included. */
  readonly head: string;
  readonly body: Buffer;
  /** Why there is no answer: 'closed' (ended without one, or mid-answer), 'timeout', or 'refused' (no connection). */
  readonly failure?: 'closed' | 'timeout' | 'refused';
  /** For pipelined requests: the answers to the ones before the last, in order. */
  readonly earlier?: readonly RawAnswer[];
}

export interface RawRequest {
  /** The whole request, exactly as it goes on the wire. */
  readonly bytes: Buffer;
  /** The answer has no body whatever its headers say. */
  readonly head: boolean;
  /** Pipelined: `head` of each request before the last one, whose answers come first. */
  readonly before?: readonly boolean[];
}

/** Several requests written at once, answered in order on the one connection. */
export function pipelined(requests: readonly RawRequest[]): RawRequest {
  return { bytes: Buffer.concat(requests.map((r) => r.bytes)), head: requests.at(-1)!.head, before: requests.slice(0, -1).map((r) => r.head) };
}

/** A request from parts; header lines are written as given (latin1), repeats and all. */
export function rawRequest(o: {
  method: string;
  target: string;
  headers: ReadonlyArray<readonly [string, string]>;
  /** Sent with its Content-Length, or chunked (in one chunk) when `chunked`. */
  body?: Buffer;
  chunked?: boolean;
  version?: string;
  host?: string | null;
}): RawRequest {
  const lines = [`${o.method} ${o.target} ${o.version ?? 'HTTP/1.1'}`];
  if (o.host !== null) lines.push(`Host: ${o.host ?? '127.0.0.1'}`);
  for (const [name, value] of o.headers) lines.push(`${name}: ${value}`);
  if (o.body) lines.push(o.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${o.body.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  if (!o.body) return { bytes: head, head: o.method === 'HEAD' };
  const body = o.chunked ? Buffer.concat([Buffer.from(`${o.body.length.toString(16)}\r\n`), o.body, Buffer.from('\r\n0\r\n\r\n')]) : o.body;
  return { bytes: Buffer.concat([head, body]), head: o.method === 'HEAD' };
}

export function header(answer: RawAnswer, name: string): string | undefined {
  return answer.headers.find(([n]) => n === name)?.[1];
}

export class RawConnection {
  readonly #port: number;
  #socket: Socket | undefined;
  #buffer: Buffer = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(port: number) {
    this.#port = port;
  }

  /** Sends the request and reads its answer; a reused socket the server had closed is retried once, fresh. */
  async send(request: RawRequest, timeoutMs = 10_000): Promise<RawAnswer> {
    const reused = this.#socket !== undefined;
    const answer = await this.#exchange(request, timeoutMs);
    if (reused && answer.failure === 'closed' && answer.head === '' && !answer.earlier?.length) return this.#exchange(request, timeoutMs);
    return answer;
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  async #exchange(request: RawRequest, timeoutMs: number): Promise<RawAnswer> {
    if (this.#socket === undefined) {
      try {
        await this.#open();
      } catch {
        return { status: 0, headers: [], head: '', body: Buffer.alloc(0), failure: 'refused' };
      }
    }
    this.#socket!.write(request.bytes);
    const deadline = Date.now() + timeoutMs;
    const heads = [...(request.before ?? []), request.head];
    const earlier: RawAnswer[] = [];
    const withEarlier = (answer: RawAnswer): RawAnswer => (request.before ? { ...answer, earlier } : answer);
    for (;;) {
      const parsed = parseAnswer(this.#buffer, heads[earlier.length]!, this.#ended);
      if (parsed !== undefined) {
        this.#buffer = this.#buffer.subarray(parsed.used);
        const done = parsed.close || this.#ended;
        if (done) this.close();
        if (earlier.length < heads.length - 1) {
          earlier.push(parsed.answer);
          // The server ended the connection before answering the rest.
          if (done) return withEarlier({ status: 0, headers: [], head: '', body: Buffer.alloc(0), failure: 'closed' });
          continue;
        }
        return withEarlier(parsed.answer);
      }
      if (this.#ended) {
        const head = this.#buffer.toString('latin1');
        this.close();
        return withEarlier({ status: 0, headers: [], head, body: Buffer.alloc(0), failure: 'closed' });
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.close();
        return withEarlier({ status: 0, headers: [], head: this.#buffer.toString('latin1'), body: Buffer.alloc(0), failure: 'timeout' });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async #open(): Promise<void> {
    this.#buffer = Buffer.alloc(0);
    this.#ended = false;
    const socket = connect({ host: '127.0.0.1', port: this.#port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket !== socket) return;
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    const ended = () => {
      if (this.#socket !== socket) return;
      this.#ended = true;
      this.#wake?.();
    };
    socket.on('end', ended);
    socket.on('close', ended);
    socket.on('error', () => undefined);
    this.#socket = socket;
  }
}

/** One whole answer at the start of buf, or undefined when more bytes are needed. */
function parseAnswer(buf: Buffer, isHead: boolean, ended: boolean): { answer: RawAnswer; used: number; close: boolean } | undefined {
  let offset = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', offset);
    if (end === -1) return undefined;
    const head = buf.toString('latin1', offset, end);
    const [statusLine = '', ...fields] = head.split('\r\n');
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(statusLine)?.[1] ?? 0);
    const headers = fields.map((f) => {
      const colon = f.indexOf(':');
      return [f.slice(0, colon).trim().toLowerCase(), f.slice(colon + 1).trim()] as const;
    });
    const bodyStart = end + 4;
    if (status >= 100 && status < 200) {
      offset = bodyStart; // interim answer: the final one follows
      continue;
    }
    const get = (name: string) => headers.find(([n]) => n === name)?.[1];
    const close = /close/i.test(get('connection') ?? '') || statusLine.startsWith('HTTP/1.0');
    const done = (body: Buffer, used: number, untilClose = false) => ({ answer: { status, headers, head, body }, used, close: close || untilClose });
    if (isHead || status === 204 || status === 304) return done(Buffer.alloc(0), bodyStart);
    if (/chunked/i.test(get('transfer-encoding') ?? '')) {
      const chunks: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', at);
        if (lineEnd === -1) return undefined;
        const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
        if (Number.isNaN(size)) return done(Buffer.concat(chunks), buf.length, true);
        if (size === 0) {
          const trailerEnd = buf.indexOf('\r\n\r\n', lineEnd);
          if (trailerEnd === -1) return buf.indexOf('\r\n', lineEnd + 2) === lineEnd + 2 ? done(Buffer.concat(chunks), lineEnd + 4) : undefined;
          return done(Buffer.concat(chunks), trailerEnd + 4);
        }
        if (buf.length < lineEnd + 2 + size + 2) return undefined;
        chunks.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    const length = get('content-length');
    if (length !== undefined) {
      const n = Number(length);
      if (buf.length < bodyStart + n) return undefined;
      return done(buf.subarray(bodyStart, bodyStart + n), bodyStart + n);
    }
    if (!ended) return undefined;
    return done(buf.subarray(bodyStart), buf.length, true);
  }
}
