// bodyBatches: chunks gathered while the reader is busy, in order, copied (a batch's memory is
// reused once the next is asked for); a body held back once maxBytes
// are queued (bounded memory) and let go when the reader takes them; the body's error (a
// premature close included) after the chunks before it; leaving early destroys the body. For
// Node streams (read by 'data' events) and for plain async iterables alike.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { bodyBatches } from '../../src/proxy/body-batches.ts';

const CHUNK = 64 << 10;
const MAX = 1 << 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An endless source of numbered chunks: as a Node stream, or as an async generator. */
function endless(kind: 'stream' | 'iterable', made: { count: number; destroyed: boolean }) {
  const next = () => Buffer.alloc(CHUNK, made.count++ % 251);
  if (kind === 'stream') {
    return new Readable({
      highWaterMark: CHUNK,
      read() {
        setImmediate(() => this.push(next()));
      },
      destroy(err, cb) {
        made.destroyed = true;
        cb(err);
      },
    });
  }
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        await new Promise((r) => setImmediate(r));
        yield next();
      }
    },
    destroy: () => {
      made.destroyed = true;
    },
  };
}

describe.each(['stream', 'iterable'] as const)('bodyBatches over a %s', (kind) => {
  it('holds the body back past maxBytes until the reader takes the batch, then lets it go', async () => {
    const made = { count: 0, destroyed: false };
    let received = 0;
    const events: string[] = [];
    const batches = bodyBatches(endless(kind, made), MAX, { received: (n) => (received += n), paused: () => events.push('paused'), resumed: () => events.push('resumed') });
    const first = await batches.next();
    expect(first.done).toBe(false);
    const firstBytes = Buffer.from(first.value!);
    for (let i = 0; i < firstBytes.length / CHUNK; i++) expect(firstBytes[i * CHUNK]).toBe(i % 251);
    // A slow disk: the reader does not come back for a while.
    await sleep(150);
    const bytesOf = (batch: Uint8Array) => batch.byteLength;
    const queuedWhileAway = received - bytesOf(first.value!);
    // At most maxBytes, the chunk that crossed it, and what the stream had buffered.
    expect(queuedWhileAway).toBeGreaterThanOrEqual(MAX);
    expect(queuedWhileAway).toBeLessThanOrEqual(MAX + 3 * CHUNK);
    expect(events).toEqual(['paused']);
    const second = await batches.next();
    expect(bytesOf(second.value!)).toBeGreaterThanOrEqual(MAX);
    expect(events).toEqual(['paused', 'resumed']);
    // In order: chunk i is filled with i % 251. The first batch's memory is reused by now, so
    // only the second is read here, from where the first ended.
    const from = bytesOf(first.value!) / CHUNK;
    const second_ = Buffer.from(second.value!);
    for (let i = 0; i < second_.length / CHUNK; i++) expect(second_.subarray(i * CHUNK, (i + 1) * CHUNK).every((b) => b === (from + i) % 251)).toBe(true);
    await batches.return(undefined);
    expect(made.destroyed).toBe(true);
  });
});

describe('bodyBatches endings', () => {
  it('hands over every chunk of a stream that ends, then ends', async () => {
    const chunks = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('bc'), Buffer.from('def')];
    const got: Buffer[] = [];
    for await (const batch of bodyBatches(Readable.from(chunks), MAX)) {
      expect(batch.length).toBeGreaterThan(0);
      got.push(Buffer.from(batch));
    }
    expect(Buffer.concat(got).toString()).toBe('abcdef');
  });

  it('throws the stream error after the chunks before it', async () => {
    const body = new Readable({ read() {} });
    body.push(Buffer.from('first'));
    setTimeout(() => body.destroy(new Error('upstream reset')), 20);
    const got: string[] = [];
    await expect(
      (async () => {
        for await (const batch of bodyBatches(body, MAX)) got.push(Buffer.from(batch).toString());
      })(),
    ).rejects.toThrow('upstream reset');
    expect(got).toEqual(['first']);
  });

  it('takes a stream destroyed without an error (a premature close) as a failure, not an end', async () => {
    const body = new Readable({ read() {} });
    body.push(Buffer.from('part'));
    setTimeout(() => body.destroy(), 20);
    await expect(
      (async () => {
        for await (const batch of bodyBatches(body, MAX)) void batch;
      })(),
    ).rejects.toThrow(/premature close/i);
  });

  it('throws an iterable body error', async () => {
    const body = {
      async *[Symbol.asyncIterator]() {
        yield Buffer.from('x');
        throw new Error('reader failed');
      },
    };
    await expect(
      (async () => {
        for await (const batch of bodyBatches(body, MAX)) void batch;
      })(),
    ).rejects.toThrow('reader failed');
  });
});
