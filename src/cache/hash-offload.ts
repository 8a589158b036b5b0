// Hashing blob bytes on a thread of their own (hash-thread.ts), so that a fill's three jobs run
// on three threads at once: the main thread receives, the hash thread hashes, the thread pool
// writes. On one thread, receive and hash took turns and a cold fill ran at 300-400 MB/s here;
// sha256 alone runs at about 1.4 GB/s. One thread serves every fill of the process (a blob's
// updates must be hashed in order, and one core's worth of hashing outruns the disk); it starts
// with the first fill, keeps no process alive, and stops once no hash was held for idleStopMs,
// giving its 10-20 MB back (a restart costs a few ms at the next fill). A thread that dies fails
// the hashes it held: their fills fail and nothing unverified is kept.
import { Worker } from 'node:worker_threads';
import { threadEntry } from '../thread-entry.ts';
import type { HashReply, HashRequest } from './hash-messages.ts';

const THREAD_ENTRY = threadEntry('hash-thread', import.meta.url);

export class HashThreadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HashThreadError';
  }
}

/** One blob's hash, kept on the hash thread. Updates are hashed in the order they were asked for; several may be outstanding. */
export interface OffloadedHash {
  /** Hashes bytes [offset, offset + length) of buffer; the caller leaves them untouched until this settles. */
  update(buffer: SharedArrayBuffer, offset: number, length: number): Promise<void>;
  /**
   * Writes the bytes into the open file fd at position, every one, then hashes them, both on the
   * hash thread (the native one only): written settles once they are in the file, hashed once
   * hashed. The caller keeps fd open and the bytes untouched until both have settled; a failed
   * write rejects both with the errno's code, and the hash gives no digest.
   */
  writeAndUpdate?(fd: number, bytes: Uint8Array, position: number): WrittenAndHashed;
  /** The hex digest of everything updated; the hash is gone afterwards. */
  digest(): Promise<string>;
  /** Forgets the hash (an aborted write). */
  drop(): void;
}

export interface WrittenAndHashed {
  readonly written: Promise<void>;
  readonly hashed: Promise<void>;
}

/** Where blob bytes are hashed off the main thread: this Worker, or the native thread (native-hash-thread.ts). */
export interface HashThread {
  hash(algorithm: string): OffloadedHash;
  /** Stops the thread; hashes still held fail. */
  close(): Promise<void>;
}

interface Pending {
  resolve(reply: HashReply): void;
  reject(err: Error): void;
}

const IDLE_STOP_MS = 30_000;

export class HashOffload implements HashThread {
  readonly #idleStopMs: number;
  #worker: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  #seq = 0;
  #ids = 0;
  /** Hashes begun and not yet digested or dropped. */
  #held = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: { idleStopMs?: number } = {}) {
    this.#idleStopMs = options.idleStopMs ?? IDLE_STOP_MS;
  }

  /** Whether the thread is up (for tests and the curious). */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  hash(algorithm: string): OffloadedHash {
    const worker = this.#thread();
    const id = ++this.#ids;
    clearTimeout(this.#idleTimer);
    this.#held++;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      if (--this.#held === 0) this.#stopWhenIdle();
    };
    this.#post(worker, { op: 'begin', id, algorithm });
    const ask = async (request: (seq: number) => HashRequest): Promise<HashReply> => {
      // A restarted thread does not hold this hash: the bytes hashed so far are lost with it.
      if (this.#worker !== worker) throw new HashThreadError('the hash thread stopped while a blob was being hashed');
      const seq = ++this.#seq;
      const answered = new Promise<HashReply>((resolve, reject) => this.#pending.set(seq, { resolve, reject }));
      if (this.#pending.size === 1) worker.ref();
      this.#post(worker, request(seq));
      const reply = await answered;
      if (reply.error !== undefined) throw new HashThreadError(reply.error);
      return reply;
    };
    return {
      update: async (buffer, offset, length) => {
        await ask((seq) => ({ op: 'update', id, seq, buffer, offset, length }));
      },
      digest: async () => {
        try {
          const { hex } = await ask((seq) => ({ op: 'digest', id, seq }));
          if (hex === undefined) throw new HashThreadError('the hash thread answered no digest');
          return hex;
        } finally {
          release();
        }
      },
      drop: () => {
        if (held && this.#worker === worker) this.#post(worker, { op: 'drop', id });
        release();
      },
    };
  }

  /** Stops the thread; hashes still held fail. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
    this.#failAll(new HashThreadError('the hash thread was stopped'));
  }

  #thread(): Worker {
    if (this.#closed) throw new HashThreadError('the hash thread was stopped');
    if (this.#worker) return this.#worker;
    const worker = new Worker(THREAD_ENTRY);
    worker.unref();
    worker.on('message', (reply: HashReply) => {
      const pending = this.#pending.get(reply.seq);
      if (!pending) return;
      this.#pending.delete(reply.seq);
      if (this.#pending.size === 0) worker.unref();
      pending.resolve(reply);
    });
    const gone = (err: Error) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#failAll(err);
    };
    worker.on('error', (err) => gone(new HashThreadError('the hash thread failed', { cause: err })));
    worker.on('exit', (code) => gone(new HashThreadError(`the hash thread exited (${code})`)));
    this.#worker = worker;
    return worker;
  }

  #stopWhenIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      const worker = this.#worker;
      if (this.#held > 0 || !worker) return;
      // Forgotten first: a hash asked for from now on starts a new thread.
      this.#worker = undefined;
      void worker.terminate();
    }, this.#idleStopMs);
    this.#idleTimer.unref();
  }

  #post(worker: Worker, request: HashRequest): void {
    worker.postMessage(request);
  }

  #failAll(err: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }
}
