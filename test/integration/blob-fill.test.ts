// runFill against the real disk blob store, hashing on the calling thread and on the hash thread:
// chunks gathered into fewer writes still land whole and in order with progress published, and a
// disk that fills up mid-body fails the fill, leaving no temp file behind.
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDiskBlobStore } from '../../src/cache/disk-blob-store.ts';
import { HashOffload } from '../../src/cache/hash-offload.ts';
import { BlobFill, runFill } from '../../src/proxy/blob-fill.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { mountTmpfs, type Tmpfs } from '../support/tmpfs.ts';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function* chunked(bytes: Buffer, size: number, pauseEvery = 0): AsyncIterable<Uint8Array> {
  for (let i = 0, n = 0; i < bytes.length; i += size, n++) {
    if (pauseEvery && n % pauseEvery === 0) await new Promise((r) => setTimeout(r, 1));
    yield bytes.subarray(i, i + size);
  }
}

describe.each(['calling thread', 'hash thread'])('runFill, hashing on the %s', (where) => {
  const storeOptions = () => {
    if (where === 'calling thread') return { fsync: false };
    const hashOffload = new HashOffload();
    cleanups.push(() => hashOffload.close());
    return { fsync: false, hashOffload };
  };

  it('writes a body of many small chunks whole, publishing progress as it goes', async () => {
    const dir: TempDir = await makeTempDir('wharf-fill-');
    cleanups.push(dir.cleanup);
    const store = createDiskBlobStore(dir.path, storeOptions());
    const bytes = randomBytes(3 << 20);
    const writer = await store.createWriter(sha256(bytes));
    const fill = new BlobFill(sha256(bytes), bytes.length, () => writer.openReader());
    const seen: number[] = [];
    const watch = (async () => {
      while (fill.state === 'filling') {
        seen.push(fill.written);
        await fill.changed();
      }
    })();
    await runFill(fill, writer, chunked(bytes, 16 << 10, 8));
    await watch;
    expect(fill.state).toBe('complete');
    expect(fill.info?.size).toBe(bytes.length);
    expect(seen.length).toBeGreaterThan(2);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    const info = await store.stat(sha256(bytes));
    expect(info?.size).toBe(bytes.length);
  });

  it('fails the fill and leaves no temp file when the disk fills up mid-body', async () => {
    const disk: Tmpfs = await mountTmpfs(1 << 20);
    cleanups.push(() => disk.unmount());
    const store = createDiskBlobStore(disk.path, storeOptions());
    const bytes = randomBytes(3 << 20);
    const writer = await store.createWriter(sha256(bytes));
    const fill = new BlobFill(sha256(bytes), bytes.length, () => writer.openReader());
    await runFill(fill, writer, chunked(bytes, 64 << 10));
    expect(fill.state).toBe('failed');
    expect((fill.error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(await readdir(join(disk.path, 'blobs', 'tmp'))).toEqual([]);
    expect(await store.stat(sha256(bytes))).toBeUndefined();
  });
});
