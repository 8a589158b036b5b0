// BatchQueue, driven as a plain connection drives it: each read lands in the region asked for
// just before it (readRegion), and the region for the next read is asked for before take()
// swaps buffers. A read that lands in staging memory is never copied, also when it lands after
// the batch before it was taken and released (a slow read beside a fast reader), and a buffer
// holding a lent batch is not filled again until that batch is released.
import { describe, expect, it } from 'vitest';
import { BatchQueue } from '../../src/proxy/staging-queue.ts';

const MAX = 64 << 20;

/** A read of n bytes (valued fill) into the region given, as the socket would do it. */
function read(region: Uint8Array | undefined, n: number, fill: number): Uint8Array {
  const landed = region!.subarray(0, n);
  landed.fill(fill);
  return landed;
}

function queueCountingCopies() {
  const counts = { copied: 0 };
  const queue = new BatchQueue(MAX, { copied: (n) => (counts.copied += n) });
  return { queue, counts };
}

function overlaps(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

describe('BatchQueue reads in place', () => {
  it('lends a read that lands past a batch just taken where it lies, after that batch', () => {
    const { queue, counts } = queueCountingCopies();
    queue.push(read(queue.readRegion(), 1000, 1));
    const next = queue.readRegion();
    const first = queue.take()!;
    queue.push(read(next, 2000, 2));
    expect(counts.copied).toBe(0);
    expect(Buffer.from(first.bytes).equals(Buffer.alloc(1000, 1))).toBe(true);
    const second = queue.take()!;
    expect(Buffer.from(second.bytes).equals(Buffer.alloc(2000, 2))).toBe(true);
  });

  it('lends a read that lands after the batch before it was taken and released, without copying it', () => {
    const { queue, counts } = queueCountingCopies();
    queue.push(read(queue.readRegion(), 1000, 1));
    const next = queue.readRegion();
    queue.take()!.release();
    const landed = read(next, 3000, 3);
    queue.push(landed);
    expect(counts.copied).toBe(0);
    const batch = queue.take()!;
    expect(Buffer.from(batch.bytes).equals(Buffer.alloc(3000, 3))).toBe(true);
    // While that batch is lent, no read is offered its memory, however many batches follow.
    for (let i = 0; i < 6; i++) {
      const region = queue.readRegion()!;
      expect(overlaps(region, batch.bytes)).toBe(false);
      queue.push(read(region, 5000, 10 + i));
      queue.take()!.release();
    }
    expect(Buffer.from(batch.bytes).equals(Buffer.alloc(3000, 3))).toBe(true);
    expect(counts.copied).toBe(0);
  });

  it('copies a chunk that did not land in a region it offered, in order after what it holds', () => {
    const { queue, counts } = queueCountingCopies();
    queue.push(read(queue.readRegion(), 100, 1));
    queue.push(Buffer.alloc(50, 2));
    expect(counts.copied).toBe(50);
    const batch = queue.take()!;
    expect(Buffer.from(batch.bytes).equals(Buffer.concat([Buffer.alloc(100, 1), Buffer.alloc(50, 2)]))).toBe(true);
  });
});
