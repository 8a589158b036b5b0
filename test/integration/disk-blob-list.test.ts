// The disk store's list() over a shard holding more blobs than it stats at once: every blob once,
// with its size, and nothing that is not a blob file.
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDiskBlobStore } from '../../src/cache/disk-blob-store.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

const dirs: TempDir[] = [];
afterEach(async () => Promise.all(dirs.splice(0).map((d) => d.cleanup())));

const hexOf = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** count blobs whose digests all start with "ab", i.e. one shard directory. */
function sameShard(count: number): Buffer[] {
  const found: Buffer[] = [];
  for (let i = 0; found.length < count; i++) {
    const body = Buffer.from(`blob ${i} `.padEnd(10 + (i % 50), 'x'));
    if (hexOf(body).startsWith('ab')) found.push(body);
  }
  return found;
}

describe('disk blob store list()', () => {
  it('lists every blob of a crowded shard once, with its size', async () => {
    const dir = await makeTempDir('wharf-disk-list-');
    dirs.push(dir);
    const store = createDiskBlobStore(dir.path, { fsync: false });
    const blobs = sameShard(150);
    for (const body of blobs) {
      const writer = await store.createWriter(`sha256:${hexOf(body)}`);
      await writer.write(body);
      await writer.commit();
    }
    await mkdir(join(dir.path, 'blobs', 'sha256', 'ab', 'not-a-blob'));
    const listed = new Map<string, number>();
    for await (const blob of store.list()) {
      expect(listed.has(blob.digest)).toBe(false);
      listed.set(blob.digest, blob.size);
    }
    expect(listed).toEqual(new Map(blobs.map((b) => [`sha256:${hexOf(b)}`, b.length])));
  });
});
