// The blob minimum rate on its own: a fill whose body is slower than the floor fails with
// SlowBodyError at the first window boundary and leaves nothing behind, a floor of 0 never cuts,
// and windows in which the reader held the body back (a slow disk, a slow client) are excused.
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createDiskBlobStore } from '../../src/cache/disk-blob-store.ts';
import { BlobFill, runFill } from '../../src/proxy/blob-fill.ts';
import { RateFloor, SlowBodyError } from '../../src/proxy/rate-floor.ts';
import { makeTempDir } from '../support/temp-dir.ts';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A body that yields `bytes` every `everyMs`, as a stream (destroyable, like undici's). */
function drip(body: Buffer, bytes: number, everyMs: number): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < body.length; i += bytes) {
        await sleep(everyMs);
        yield body.subarray(i, i + bytes);
      }
    })(),
  );
}

async function fillFrom(body: Readable, blob: Buffer, minRate: { bytesPerSecond: number; windowMs: number }) {
  const dir = await makeTempDir('wharf-rate-');
  cleanups.push(dir.cleanup);
  const store = createDiskBlobStore(dir.path, { fsync: false });
  const writer = await store.createWriter(sha256(blob));
  const fill = new BlobFill(sha256(blob), blob.length, () => writer.openReader());
  const started = performance.now();
  await runFill(fill, writer, body, { minRate });
  return { fill, ms: performance.now() - started, store, tmp: await readdir(join(dir.path, 'blobs', 'tmp')) };
}

describe('blob minimum rate', () => {
  it('fails a fill slower than the floor at the first window boundary, leaving no temp file', async () => {
    const blob = randomBytes(32 << 10);
    const body = drip(blob, 100, 20); // 5000 B/s, under 10000 B/s; 6.5 s to finish
    const { fill, ms, store, tmp } = await fillFrom(body, blob, { bytesPerSecond: 10_000, windowMs: 200 });
    expect(fill.state).toBe('failed');
    expect(fill.error).toBeInstanceOf(SlowBodyError);
    expect(ms).toBeLessThan(600);
    expect(body.destroyed).toBe(true);
    expect(tmp).toEqual([]);
    expect(await store.stat(sha256(blob))).toBeUndefined();
  });

  it('lets the same body finish with no minimum (0)', async () => {
    const blob = randomBytes(4 << 10);
    const { fill } = await fillFrom(drip(blob, 100, 5), blob, { bytesPerSecond: 0, windowMs: 50 });
    expect(fill.state).toBe('complete');
  });

  it('does not hold a window against the upstream while the reader held the body back', async () => {
    const cuts: SlowBodyError[] = [];
    const floor = new RateFloor({ bytesPerSecond: 1000, windowMs: 100 }, (err) => cuts.push(err));
    try {
      floor.pause();
      await sleep(350); // three windows of nothing, all the reader's doing
      floor.resume();
      expect(cuts).toEqual([]);
      // Nothing more arrives: the first whole window after the pause cuts.
      await sleep(250);
      expect(cuts).toHaveLength(1);
    } finally {
      floor.stop();
    }
  });
});
