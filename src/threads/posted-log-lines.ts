// A hit thread's log output: its lines go to the main thread, which writes them to stdout with its
// own. One writer per stdout: two threads writing a pipe each may interleave a line's bytes past
// PIPE_BUF. The lines are encoded here, into a 64 KiB buffer that is then transferred (moved, not
// copied) to the main thread after at most BATCH_MS or once full: posting them as a joined string
// cost a join and a copy here, a copy and a UTF-8 encoding on the main thread, and garbage on both
// (with two threads the log cost 2.5-6 us a request against 0.7-1.6 with one; docs/benchmarks.md).
import type { DestinationStream } from 'pino';
import type { HitThreadMessage } from './messages.ts';
import type { LineSink } from '../logging/line-sink.ts';
// A transferred buffer becomes one of the main writer's chunks: made the size it reuses.
import { CHUNK_BYTES, MAX_BYTES_PER_UNIT } from '../logging/batched-log-writer.ts';

/** As the main thread's writer waits for company; a message per request would cost more than the line. */
const BATCH_MS = 20;
/** Written buffers the main thread gave back, kept for the next batches. */
const SPARE_BUFFERS = 4;

export class PostedLogLines implements DestinationStream, LineSink {
  readonly #send: (message: HitThreadMessage, transfer: ArrayBuffer[]) => void;
  #chunk: Buffer | undefined;
  #used = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #spare: Buffer[] = [];

  constructor(send: (message: HitThreadMessage, transfer: ArrayBuffer[]) => void) {
    this.#send = send;
  }

  write(text: string): void {
    let chunk = this.#chunk;
    if (!chunk || this.#used + text.length * MAX_BYTES_PER_UNIT > chunk.length) chunk = this.#roomFor(Buffer.byteLength(text));
    this.commitLine(this.#used + chunk.write(text, this.#used));
  }

  reserveLine(maxBytes: number): number {
    this.#roomFor(maxBytes);
    return this.#used;
  }

  get lineBuffer(): Buffer {
    return this.#chunk!;
  }

  commitLine(end: number): void {
    this.#used = end;
    this.#timer ??= setTimeout(() => this.flush(), BATCH_MS).unref();
  }

  /** The chunk, with room for `bytes` more (a fresh one once it has not). */
  #roomFor(bytes: number): Buffer {
    const chunk = this.#chunk;
    if (chunk && this.#used + bytes <= chunk.length) return chunk;
    this.flush();
    // Its own memory, never the shared pool's: the buffer is moved to another thread.
    return (this.#chunk = (bytes <= CHUNK_BYTES ? this.#spare.pop() : undefined) ?? Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, bytes)));
  }

  /** A buffer posted before, written out by the main thread and moved back here. */
  giveBack(buffer: ArrayBuffer): void {
    if (buffer.byteLength === CHUNK_BYTES && this.#spare.length < SPARE_BUFFERS) this.#spare.push(Buffer.from(buffer));
  }

  /** Posts what is pending now (also before the thread says it has closed). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const chunk = this.#chunk;
    if (!chunk || this.#used === 0) return;
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, this.#used);
    this.#chunk = undefined;
    this.#used = 0;
    this.#send({ type: 'log', bytes }, [chunk.buffer as ArrayBuffer]);
  }
}
