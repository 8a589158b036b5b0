// Where a response body read off a plain socket ends (plain-exchange.ts): after Content-Length
// bytes, at the last chunk of a chunked body, or at the connection's close. Each read is handed
// in as it came; the body's bytes go out as views of it, with no copy.
import { errors } from 'undici';
import type { BodyFraming } from './response-head.ts';

export class ChunkedBodyError extends Error {
  readonly code = 'HPE_INVALID_CHUNK_SIZE';
  constructor(reason: string) {
    super(`invalid chunked body: ${reason}`);
    this.name = 'ChunkedBodyError';
  }
}

/** A chunk-size line with its extensions, or a trailer line, longer than this is refused. */
const MAX_LINE = 4096;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})(?:[\t ]*;.*)?$/;
const CR = 13;
const LF = 10;

type ChunkedState = 'size' | 'data' | 'data-end' | 'trailer';

export class BodyFramer {
  readonly #framing: BodyFraming;
  /** Bytes of the body (length) or of the current chunk (chunked) still to come. */
  #remaining: number;
  #state: ChunkedState = 'size';
  #line = '';
  #done: boolean;

  constructor(framing: BodyFraming) {
    this.#framing = framing;
    this.#remaining = framing.kind === 'length' ? framing.length : 0;
    this.#done = framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0);
  }

  /** Every byte of the body is in. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Takes one read: its body bytes go to data (in order, none empty). Returns how many of the
   * read's bytes belong to this body; fewer than it holds means the body ended inside it.
   */
  feed(read: Uint8Array, data: (bytes: Uint8Array) => void): number {
    if (this.#done) return 0;
    switch (this.#framing.kind) {
      case 'close':
        data(read);
        return read.length;
      case 'length': {
        const take = Math.min(this.#remaining, read.length);
        this.#remaining -= take;
        if (this.#remaining === 0) this.#done = true;
        if (take > 0) data(take === read.length ? read : read.subarray(0, take));
        return take;
      }
      default:
        return this.#chunked(read, data);
    }
  }

  /** The connection closed: an error unless the body may end so or already ended. */
  closed(): Error | undefined {
    if (this.#done) return undefined;
    if (this.#framing.kind === 'close') {
      this.#done = true;
      return undefined;
    }
    return new errors.SocketError('other side closed before the body ended');
  }

  #chunked(read: Uint8Array, data: (bytes: Uint8Array) => void): number {
    let at = 0;
    while (at < read.length && !this.#done) {
      if (this.#state === 'data') {
        const take = Math.min(this.#remaining, read.length - at);
        data(read.subarray(at, at + take));
        at += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = 'data-end';
        continue;
      }
      // A line: a chunk size, the CRLF after a chunk's data, or a trailer.
      const lf = read.indexOf(LF, at);
      const end = lf === -1 ? read.length : lf + 1;
      this.#line += Buffer.from(read.buffer, read.byteOffset + at, end - at).toString('latin1');
      at = end;
      if (this.#line.length > MAX_LINE) throw new ChunkedBodyError('line too long');
      if (lf === -1) continue;
      const line = this.#line;
      this.#line = '';
      if (line.length < 2 || line.charCodeAt(line.length - 2) !== CR) throw new ChunkedBodyError('line not ended by CRLF');
      this.#lineRead(line.slice(0, -2));
    }
    return at;
  }

  #lineRead(line: string): void {
    switch (this.#state) {
      case 'data-end':
        if (line !== '') throw new ChunkedBodyError('chunk longer than its size');
        this.#state = 'size';
        return;
      case 'trailer':
        // Trailers are read and dropped; the blank line ends the body.
        if (line === '') this.#done = true;
        return;
      default: {
        const size = CHUNK_SIZE.exec(line);
        if (!size) throw new ChunkedBodyError('bad chunk size');
        this.#remaining = parseInt(size[1]!, 16);
        this.#state = this.#remaining === 0 ? 'trailer' : 'data';
      }
    }
  }
}
