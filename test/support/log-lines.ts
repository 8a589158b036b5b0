// A pino destination that keeps every JSON log line, for tests that read what wharf logged.
import { Writable } from 'node:stream';

export class LogLines extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];

  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      this.raw.push(line);
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    done();
  }

  /** The first line matching from line `since` on, waiting up to timeoutMs for it to be written. */
  async waitFor(match: (line: Record<string, unknown>) => boolean, opts: { since?: number; timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(opts.since ?? 0).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no such log line within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
