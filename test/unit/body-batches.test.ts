// bodyBatches: chunks gathered while the reader is busy, in order, copied (a batch's memory is
// lent until released, and at most three are lent at once); a body held back once maxBytes
// are queued (bounded memory) and let go when the reader takes them; the body's error (a
// premature close included) after the chunks before it; leaving early destroys the body. For
// Node streams (read by 'data' events) and for plain async iterables alike.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { bodyBatches, type Batch } from '../../src/proxy/body-batches.ts';

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
    const firstBytes = Buffer.from(first.value!.bytes);
    for (let i = 0; i < firstBytes.length / CHUNK; i++) expect(firstBytes[i * CHUNK]).toBe(i % 251);
    // A slow disk: the reader does not come back for a while.
    await sleep(150);
    const bytesOf = (batch: Batch) => batch.bytes.byteLength;
    const queuedWhileAway = received - bytesOf(first.value!);
    // At most maxBytes, the chunk that crossed it, and what the stream had buffered.
    expect(queuedWhileAway).toBeGreaterThanOrEqual(MAX);
    expect(queuedWhileAway).toBeLessThanOrEqual(MAX + 3 * CHUNK);
    expect(events).toEqual(['paused']);
    const second = await batches.next();
    expect(bytesOf(second.value!)).toBeGreaterThanOrEqual(MAX);
    expect(events).toEqual(['paused', 'resumed']);
    // In order: chunk i is filled with i % 251, the second batch from where the first ended.
    first.value!.release();
    const from = bytesOf(first.value!) / CHUNK;
    const second_ = Buffer.from(second.value!.bytes);
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
      expect(batch.bytes.length).toBeGreaterThan(0);
      got.push(Buffer.from(batch.bytes));
      batch.release();
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
        for await (const batch of bodyBatches(body, MAX)) got.push(Buffer.from(batch.bytes).toString());
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

describe('bodyBatches lending', () => {
  it('lends at most three batches: the next waits for a release, and lent bytes stay as they were', async () => {
    const made = { count: 0, destroyed: false };
    const batches = bodyBatches(endless('stream', made), MAX);
    const lent: Array<{ batch: Batch; copy: Buffer }> = [];
    for (let i = 0; i < 3; i++) {
      const next = await batches.next();
      lent.push({ batch: next.value!, copy: Buffer.from(next.value!.bytes) });
      // Let arrivals fill the next buffer before it is taken.
      await sleep(20);
    }
    let fourth: Batch | undefined;
    const asked = batches.next().then((r) => (fourth = r.value as Batch));
    // The body goes on arriving (up to maxBytes) while every other buffer is lent.
    await sleep(100);
    expect(fourth).toBeUndefined();
    for (const { batch, copy } of lent) expect(Buffer.compare(Buffer.from(batch.bytes), copy)).toBe(0);
    lent[1]!.batch.release();
    lent[1]!.batch.release(); // twice is once
    await asked;
    expect(fourth!.bytes.byteLength).toBeGreaterThan(0);
    // Still in order: the fourth starts where the third ended.
    const third = lent[2]!.copy;
    const lastChunkOfThird = third[third.length - 1]!;
    expect(fourth!.bytes[0]).toBe((lastChunkOfThird + 1) % 251);
    // The others were never released, and are still intact.
    for (const i of [0, 2]) expect(Buffer.compare(Buffer.from(lent[i]!.batch.bytes), lent[i]!.copy)).toBe(0);
    await batches.return(undefined);
    expect(made.destroyed).toBe(true);
  });
});
