// Where wharf's log lines go (stdout). Each line is encoded at once into a reusable 64 KiB chunk;
// the chunks filled meanwhile go out together in one writev, at most one write at a time, after
// at most BATCH_MS. So a line per request costs an encode into memory already there, not a
// syscall, a thread-pool round trip or a string the garbage collector must sweep later (a joined
// batch past 128 KiB lands in V8's large-object space, which only a full collection frees: RSS
// climbed with every run). Memory is bounded: when the output is slower than the lines come (a
// pipe nobody drains, a slow log shipper), lines past maxPendingBytes are dropped and counted,
// and one line says so once the output keeps up again. Serving never waits on the log.
import { writev, writeSync } from 'node:fs';
import type { DestinationStream } from 'pino';
import type { LineSink } from './line-sink.ts';

const DEFAULT_MAX_PENDING_BYTES = 8 << 20;
/** A chunk lines are encoded into; a hit thread's encoder (posted-log-lines.ts) makes its buffers this size, so they are reused here. */
export const CHUNK_BYTES = 64 << 10;
/** Free chunks kept for reuse; more are allocated under a burst and let go after. */
const SPARE_CHUNKS = 8;
/** A pipe whose reader has its end non-blocking: try again shortly. */
const RETRY_AFTER_MS = 10;
/** How long a line may wait for others to share its write; a full chunk goes at once. */
const BATCH_MS = 20;
/** UTF-8 takes at most 3 bytes per UTF-16 unit: a line of n units fits in 3n bytes. */
export const MAX_BYTES_PER_UNIT = 3;

export class BatchedLogWriter implements DestinationStream, LineSink {
  readonly #fd: number;
  readonly #maxPendingBytes: number;
  /** Chunks filled and waiting, with how many bytes of each are used; the last one is filling. */
  #chunks: Buffer[] = [];
  #used: number[] = [];
  #pendingBytes = 0;
  readonly #spare: Buffer[] = [];
  #writing = false;
  #timer: NodeJS.Timeout | undefined;
  #broken = false;
  #dropped = 0;
  #droppedUnreported = 0;
  readonly #drained: Array<() => void> = [];
  /** Chunks that came from another thread, and how each goes back once written. */
  readonly #owners = new Map<ArrayBufferLike, (buffer: ArrayBuffer) => void>();

  constructor(fd = 1, options: { maxPendingBytes?: number } = {}) {
    this.#fd = fd;
    this.#maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
  }

  /** Lines dropped since start because the output did not keep up. */
  get droppedLines(): number {
    return this.#dropped;
  }

  /** One or more whole lines, each ending in a newline. */
  write(text: string): void {
    if (this.#broken) return;
    const worst = text.length * MAX_BYTES_PER_UNIT;
    if (this.#pendingBytes + worst > this.#maxPendingBytes) {
      this.#drop(countLines(text));
      return;
    }
    this.#append(text, worst);
    this.#schedule();
  }

  /** Resolves once everything written so far is out (or dropped). */
  flush(): Promise<void> {
    if (!this.#writing && this.#pendingBytes === 0) return Promise.resolve();
    const drained = new Promise<void>((resolve) => this.#drained.push(resolve));
    this.#writeNow();
    return drained;
  }

  /** At exit, when nothing asynchronous runs any more: what is pending, written at once. */
  flushSync(): void {
    if (this.#broken) return;
    try {
      for (const bytes of this.#take()) for (let offset = 0; offset < bytes.length; ) offset += writeSync(this.#fd, bytes, offset);
    } catch {
      // Nowhere left to say it.
    }
  }

  reserveLine(maxBytes: number): number {
    if (this.#broken) return -1;
    if (this.#pendingBytes + maxBytes > this.#maxPendingBytes) {
      this.#drop(1);
      return -1;
    }
    const last = this.#chunks.length - 1;
    if (last >= 0 && this.#used[last]! + maxBytes <= this.#chunks[last]!.length) return this.#used[last]!;
    this.#chunks.push(this.#freshChunk(maxBytes));
    this.#used.push(0);
    return 0;
  }

  get lineBuffer(): Buffer {
    return this.#chunks[this.#chunks.length - 1]!;
  }

  commitLine(end: number): void {
    const last = this.#used.length - 1;
    this.#pendingBytes += end - this.#used[last]!;
    this.#used[last] = end;
    this.#schedule();
  }

  /**
   * Lines already encoded (UTF-8, each whole, ending in a newline): a hit thread's, moved here
   * with their buffer, which becomes a chunk of this writer's. Once written (or dropped) the
   * buffer goes to giveBack, so its thread fills it again rather than allocating (and this
   * thread's collector freeing) 64 KiB per batch; without giveBack it becomes a spare here.
   */
  writeBytes(bytes: Uint8Array, giveBack?: (buffer: ArrayBuffer) => void): void {
    if (this.#broken || bytes.byteLength === 0) {
      if (giveBack) giveBackSafely(giveBack, bytes.buffer as ArrayBuffer);
      return;
    }
    if (this.#pendingBytes + bytes.byteLength > this.#maxPendingBytes) {
      this.#drop(countLineBytes(bytes));
      if (giveBack) giveBackSafely(giveBack, bytes.buffer as ArrayBuffer);
      return;
    }
    if (giveBack) this.#owners.set(bytes.buffer, giveBack);
    // The whole buffer, so lines of this thread may follow in its room.
    this.#chunks.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.buffer.byteLength - bytes.byteOffset));
    this.#used.push(bytes.byteLength);
    this.#pendingBytes += bytes.byteLength;
    this.#schedule();
  }

  /** Lines not taken because the output is behind: counted, and said once it keeps up. */
  #drop(lines: number): void {
    this.#dropped += lines;
    this.#droppedUnreported += lines;
  }

  #append(text: string, worst: number): void {
    const last = this.#chunks.length - 1;
    if (last >= 0 && this.#used[last]! + worst <= this.#chunks[last]!.length) {
      const n = this.#chunks[last]!.write(text, this.#used[last]!);
      this.#used[last]! += n;
      this.#pendingBytes += n;
      return;
    }
    const chunk = this.#freshChunk(worst);
    const n = chunk.write(text, 0);
    this.#chunks.push(chunk);
    this.#used.push(n);
    this.#pendingBytes += n;
  }

  /** A spare chunk, or a new one; a line longer than a chunk gets a buffer of its own. */
  #freshChunk(bytes: number): Buffer {
    return bytes > CHUNK_BYTES ? Buffer.allocUnsafe(bytes) : (this.#spare.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES));
  }

  #schedule(): void {
    if (this.#writing) return; // the write's end takes what came meanwhile
    if (this.#chunks.length > 1) {
      this.#writeNow();
      return;
    }
    // Unref'd: a wharf with nothing else to do may exit; what is pending goes out by flushSync.
    this.#timer ??= setTimeout(() => this.#writeNow(), BATCH_MS).unref();
  }

  #writeNow(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#writing) this.#writeNext();
  }

  /** The pending bytes as views of their chunks (plus the drop notice), and a fresh start. */
  #take(): Buffer[] {
    if (this.#droppedUnreported > 0) {
      const notice = droppedLine(this.#droppedUnreported);
      this.#append(notice, notice.length * MAX_BYTES_PER_UNIT);
      this.#droppedUnreported = 0;
    }
    const views = this.#chunks.map((chunk, i) => chunk.subarray(0, this.#used[i]));
    this.#chunks = [];
    this.#used = [];
    this.#pendingBytes = 0;
    return views;
  }

  #writeNext(): void {
    if (this.#pendingBytes === 0 && this.#droppedUnreported === 0) {
      for (const resolve of this.#drained.splice(0)) resolve();
      return;
    }
    this.#writing = true;
    this.#writeFrom(this.#take());
  }

  /** batch: every view taken for this write, recycled once all of it is out (views: what is left of it). */
  #writeFrom(views: Buffer[], batch: Buffer[] = views): void {
    writev(this.#fd, views, (err, written) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') {
          setTimeout(() => this.#writeFrom(views, batch), RETRY_AFTER_MS).unref();
          return;
        }
        // EPIPE, EBADF: the reader is gone; logging stops, serving does not.
        if (code === 'EPIPE' || code === 'EBADF') this.#broken = true;
        for (const view of views) this.#dropped += countLineBytes(view);
      } else {
        const rest = skipBytes(views, written);
        if (rest.length > 0) {
          this.#writeFrom(rest, batch);
          return;
        }
      }
      this.#recycle(batch);
      this.#writing = false;
      if (this.#broken) this.#recycle(this.#take());
      // More than a chunk (or someone waiting on flush) goes at once; else the lines wait for company.
      if (this.#chunks.length > 1 || this.#drained.length > 0 || this.#pendingBytes === 0) this.#writeNext();
      else this.#schedule();
    });
  }

  #recycle(views: Buffer[]): void {
    for (const view of views) {
      const giveBack = this.#owners.get(view.buffer);
      if (giveBack) {
        this.#owners.delete(view.buffer);
        giveBackSafely(giveBack, view.buffer as ArrayBuffer);
        continue;
      }
      if (this.#spare.length >= SPARE_CHUNKS || view.buffer.byteLength !== CHUNK_BYTES) continue;
      this.#spare.push(Buffer.from(view.buffer, view.byteOffset, CHUNK_BYTES));
    }
  }
}

/** Encoded lines to a log stream: as they are to this writer, as text to any other (a test's); then their buffer to giveBack. */
export function writeEncodedLines(stream: DestinationStream, bytes: Uint8Array, giveBack?: (buffer: ArrayBuffer) => void): void {
  if (stream instanceof BatchedLogWriter) return stream.writeBytes(bytes, giveBack);
  stream.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  if (giveBack) giveBackSafely(giveBack, bytes.buffer as ArrayBuffer);
}

/** A buffer back to its thread; a thread gone (its port closed) must not stop this writer's writes. */
function giveBackSafely(giveBack: (buffer: ArrayBuffer) => void, buffer: ArrayBuffer): void {
  try {
    giveBack(buffer);
  } catch {
    // The buffer is garbage now, as it was before buffers went back.
  }
}

/** What is left of views after the first `written` bytes went out (a short write). */
function skipBytes(views: Buffer[], written: number): Buffer[] {
  let skip = written;
  const rest: Buffer[] = [];
  for (const view of views) {
    if (skip >= view.length) {
      skip -= view.length;
      continue;
    }
    rest.push(skip > 0 ? view.subarray(skip) : view);
    skip = 0;
  }
  return rest;
}

function countLineBytes(bytes: Uint8Array): number {
  let lines = 0;
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) lines++;
  return lines;
}

function countLines(text: string): number {
  let lines = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
  return lines;
}

/** pino's shape, level warn, so log tooling files it with the rest. */
function droppedLine(dropped: number): string {
  return `${JSON.stringify({ level: 40, time: new Date().toISOString(), service: 'wharf', dropped, msg: 'log lines dropped: the log output was slower than the lines came (wharf_log_lines_dropped_total)' })}\n`;
}
