// The body of an answer read off a plain socket (plain-exchange.ts). To whoever reads it as a
// stream it is a Node Readable with undici's helpers (dump, text, json, ...). A fill attaches a
// sink instead (body-batches.ts): each read then reaches the sink as a view of the socket's read
// buffer, and no chunk is allocated, queued or emitted. Receiving so cost a third of undici's CPU
// per byte here (docs/benchmarks.md). A sink may also offer the memory where the next read should
// land (its staging buffer's free end), so that nothing is copied at all.
//
// Nothing is read past the head until someone asks: the bytes that came with the head wait as
// one copy, and the socket is paused.
import { Readable } from 'node:stream';

/** Where a body's bytes go when it is attached rather than read. */
export interface BodySink {
  /** Bytes in order; the view is valid only during the call. */
  push(bytes: Uint8Array): void;
  end(): void;
  fail(err: unknown): void;
  /**
   * Where the next read may land, or undefined for the connection's own buffer. The sink must
   * leave that memory alone until a read lands in it or in the next region it gives.
   */
  readRegion?(): Uint8Array | undefined;
}

/** What the body asks of its connection. */
export interface BodySource {
  pause(): void;
  resume(): void;
  /** The body will not be read to its end: the connection is closed, never reused. */
  abandon(): void;
}

/** An attached body's controls: hold the socket back, let it go, or stop (cut: abandon the rest). */
export interface AttachedBody {
  hold(): void;
  release(): void;
  detach(cut: boolean): void;
}

/** Gets the rest of a body cut at `from` bytes (a Range request), or rejects when it cannot. */
export type ResumeBody = (from: number) => Promise<PlainBody>;

/** The breaks a body is resumed after, as undici's retry: the connection reset or closed under it. */
const RESUMABLE = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/** undici's dump() default: a body larger than this is not worth reading to keep the connection. */
const DUMP_LIMIT = 128 << 10;

export class PlainBody extends Readable {
  #source: BodySource;
  #sink: BodySink | undefined;
  #resume: ResumeBody | undefined;
  #delivered = 0;
  #early: Buffer | undefined;
  #ended = false;
  #failed: unknown;
  #used = false;

  constructor(source: BodySource, early: Uint8Array | undefined) {
    super({ highWaterMark: 1 << 20 });
    this.#source = source;
    if (early && early.length > 0) {
      this.#early = Buffer.from(early);
      this.#delivered = early.length;
    }
  }

  /** Once: a reset mid-body asks resume for the rest instead of failing. */
  resumeWith(resume: ResumeBody): void {
    this.#resume = resume;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  /** From the connection: the body's next bytes (a view valid during the call). */
  deliver(bytes: Uint8Array): void {
    this.#delivered += bytes.length;
    if (this.#sink) this.#sink.push(bytes);
    else if (!this.push(Buffer.from(bytes))) this.#source.pause();
  }

  /** From the connection: every byte is in. */
  finish(): void {
    this.#ended = true;
    const sink = this.#sink;
    if (sink) {
      sink.end();
      this.#closeAttached();
    } else if (this.#early === undefined) this.push(null);
  }

  /** From the connection: it broke, timed out or was aborted mid-body. */
  fail(err: Error): void {
    if (this.#ended || this.destroyed) return;
    const resume = this.#resume;
    this.#resume = undefined;
    const code = (err as NodeJS.ErrnoException).code;
    if (resume && code !== undefined && RESUMABLE.has(code)) this.#resumeFrom(resume, err);
    else this.#broken(err);
  }

  #broken(err: Error): void {
    if (this.#ended) return;
    this.#failed = err;
    const sink = this.#sink;
    if (sink) {
      sink.fail(err);
      this.#closeAttached();
    } else if (this.#used) this.destroy(err);
    // Not read yet: the first read hears it (an 'error' now would have no listener).
  }

  /** An attached body is over: 'close' tells whoever waits on the stream (a limiter's turn). */
  #closeAttached(): void {
    this.#sink = undefined;
    this.destroy();
  }

  /** The rest from a new answer, fed through this body as if the first had not broken. */
  #resumeFrom(resume: ResumeBody, cause: Error): void {
    let held = false;
    // Until the rest is here, holding and letting go are remembered; giving up stops the wait.
    this.#source = { pause: () => (held = true), resume: () => (held = false), abandon: () => undefined };
    resume(this.#delivered).then(
      (rest) => {
        if (this.destroyed) {
          rest.destroy();
          return;
        }
        const attached = rest.attach({ push: (b) => this.deliver(b), end: () => this.finish(), fail: (e) => this.#broken(e as Error) });
        this.#source = { pause: attached.hold, resume: attached.release, abandon: () => attached.detach(true) };
        if (held) attached.hold();
      },
      () => this.#broken(cause),
    );
  }

  /** Where the attached sink wants the next read, if it says (BodySink.readRegion). */
  readRegion(): Uint8Array | undefined {
    return this.#sink?.readRegion?.();
  }

  /** The bytes go to sink from now on, as they arrive; nothing is buffered for the stream. */
  attach(sink: BodySink): AttachedBody {
    if (this.#used) throw new Error('body already read');
    this.#used = true;
    this.#sink = sink;
    const early = this.#early;
    this.#early = undefined;
    if (early) sink.push(early);
    if (this.#failed !== undefined) {
      sink.fail(this.#failed);
      this.#closeAttached();
    } else if (this.#ended) {
      sink.end();
      this.#closeAttached();
    } else this.#source.resume();
    return {
      hold: () => this.#source.pause(),
      release: () => this.#source.resume(),
      detach: (cut) => {
        this.#sink = undefined;
        if (cut && !this.#ended) this.destroy();
      },
    };
  }

  override _read(): void {
    this.#used = true;
    if (this.#failed !== undefined) {
      this.destroy(this.#failed as Error);
      return;
    }
    const early = this.#early;
    if (early) {
      this.#early = undefined;
      this.push(early);
      if (this.#ended) this.push(null);
      return;
    }
    if (!this.#ended) this.#source.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#ended) this.#source.abandon();
    // Attached, the sink is who listens: the stream's 'error' would have no listener.
    const sink = this.#sink;
    if (sink && err) {
      this.#sink = undefined;
      sink.fail(err);
      callback();
      return;
    }
    callback(err);
  }

  /** Reads and drops the body; past limit bytes, closes the connection instead. */
  dump(opts?: { limit: number; signal?: AbortSignal }): Promise<void> {
    const limit = opts?.limit ?? DUMP_LIMIT;
    if (this.#used) {
      this.destroy();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let seen = 0;
      let attached: AttachedBody | undefined;
      const over = () => {
        attached?.detach(true);
        resolve();
      };
      attached = this.attach({
        push: (bytes) => {
          seen += bytes.length;
          if (seen > limit) over();
        },
        end: resolve,
        fail: () => resolve(),
      });
      // The bytes that came with the head may be over the limit already.
      if (seen > limit) over();
    });
  }

  bytes(): Promise<Uint8Array> {
    return this.#collect();
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.#collect();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async text(): Promise<string> {
    return (await this.#collect()).toString('utf8');
  }

  async #collect(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async blob(): Promise<Blob> {
    return new Blob([await this.bytes()]);
  }

  formData(): Promise<never> {
    return Promise.reject(new Error('formData is not supported on a blob body'));
  }
}
