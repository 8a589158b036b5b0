// The blob index over a real disk store: sizes add up, and the order of last use survives a
// restart (a new index reading the same directory).
import { randomBytes, createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createDiskBlobStore } from '../../src/cache/disk-blob-store.ts';
import { BlobIndex } from '../../src/cache/blob-index.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

const dirs: TempDir[] = [];
afterEach(async () => Promise.all(dirs.splice(0).map((d) => d.cleanup())));

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('BlobIndex', () => {
  it('keeps the order of uses that fall in the same millisecond', async () => {
    const dir = await makeTempDir('wharf-index-tick-');
    dirs.push(dir);
    const index = new BlobIndex({ store: createDiskBlobStore(dir.path, { fsync: false }), metrics: new Metrics({ processMetrics: false }) });
    const digests = Array.from({ length: 100 }, (_, i) => sha256(Buffer.from(`blob ${i}`)));
    for (const d of digests) index.added(d, 1);
    // Used in reverse, all within a millisecond or two: the first one added is now the youngest.
    for (const d of [...digests].reverse()) index.used(d);
    expect(index.oldestFirst().map((e) => e.digest)).toEqual([...digests].reverse());
  });

  it('keeps the order of last use across a restart', async () => {
    const dir = await makeTempDir('wharf-index-');
    dirs.push(dir);
    const store = createDiskBlobStore(dir.path, { fsync: false });
    const blobs = [randomBytes(100), randomBytes(200), randomBytes(300)];
    const index = new BlobIndex({ store, metrics: new Metrics({ processMetrics: false }) }, { persistEveryMs: 0 });
    for (const b of blobs) {
      const w = await store.createWriter(sha256(b));
      await w.write(b);
      await w.commit();
      index.added(sha256(b), b.length);
      await new Promise((r) => setTimeout(r, 20));
    }
    index.used(sha256(blobs[0]!)); // the first blob is now the most recent
    await new Promise((r) => setTimeout(r, 50)); // touch() is written in the background
    const order = index.oldestFirst().map((e) => e.digest);
    expect(order).toEqual([sha256(blobs[1]!), sha256(blobs[2]!), sha256(blobs[0]!)]);

    const metrics = new Metrics({ processMetrics: false });
    const restarted = new BlobIndex({ store: createDiskBlobStore(dir.path), metrics });
    await restarted.load();
    expect(restarted.oldestFirst().map((e) => e.digest)).toEqual(order);
    expect(restarted.bytes).toBe(600);
    expect(restarted.count).toBe(3);
    expect((await metrics.cacheBytes.get()).values[0]?.value).toBe(600);
    restarted.removed(sha256(blobs[1]!));
    expect(restarted.bytes).toBe(400);
  });

  it('keeps sizes and order right as it grows past its first slots and reuses removed ones', async () => {
    const dir = await makeTempDir('wharf-index-');
    dirs.push(dir);
    const index = new BlobIndex({ store: createDiskBlobStore(dir.path, { fsync: false }), metrics: new Metrics({ processMetrics: false }) });
    const digest = (i: number) => sha256(Buffer.from(`blob ${i}`));
    for (let i = 0; i < 3000; i++) index.added(digest(i), i + 1);
    for (let i = 0; i < 3000; i += 3) index.removed(digest(i));
    for (let i = 3000; i < 3500; i++) index.added(digest(i), i + 1);
    index.added(digest(1), 10); // a size that changed replaces the old one
    const kept = [...Array.from({ length: 3000 }, (_, i) => i).filter((i) => i % 3 !== 0), ...Array.from({ length: 500 }, (_, i) => 3000 + i)];
    const size = (i: number) => (i === 1 ? 10 : i + 1);
    expect(index.count).toBe(kept.length);
    expect(index.bytes).toBe(kept.reduce((sum, i) => sum + size(i), 0));
    for (const i of [0, 3, 2997]) expect(index.has(digest(i))).toBe(false);
    for (const i of [1, 2, 2998, 3499]) expect(index.has(digest(i))).toBe(true);
    const listed = index.oldestFirst();
    expect(new Set(listed.map((b) => b.digest))).toEqual(new Set(kept.map(digest)));
    const numberOf = new Map(kept.map((i) => [digest(i), i]));
    for (const b of listed) expect(b.size).toBe(size(numberOf.get(b.digest)!));
    for (let i = 1; i < listed.length; i++) expect(listed[i]!.lastUsed).toBeGreaterThanOrEqual(listed[i - 1]!.lastUsed);
  });
});
