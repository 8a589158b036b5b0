// A hit thread's log output: its lines go to the main thread, gathered for up to BATCH_MS into
// one message, and the main thread writes them to stdout with its own. One writer per stdout:
// two threads writing a pipe each may interleave a line's bytes past PIPE_BUF.
import type { DestinationStream } from 'pino';
import type { HitThreadMessage } from './messages.ts';

/** As the main thread's writer waits for company; a message per request would cost more than the line. */
const BATCH_MS = 20;
const BATCH_CHARS = 32 << 10;

export class PostedLogLines implements DestinationStream {
  readonly #send: (message: HitThreadMessage) => void;
  #pending: string[] = [];
  #pendingChars = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(send: (message: HitThreadMessage) => void) {
    this.#send = send;
  }

  write(text: string): void {
    this.#pending.push(text);
    this.#pendingChars += text.length;
    if (this.#pendingChars >= BATCH_CHARS) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), BATCH_MS).unref();
  }

  /** Posts what is pending now (also before the thread says it has closed). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    this.#send({ type: 'log', text: this.#pending.join('') });
    this.#pending = [];
    this.#pendingChars = 0;
  }
}
