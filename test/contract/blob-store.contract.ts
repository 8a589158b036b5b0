// The BlobStore contract: every implementation runs this suite. Bytes are read back through the
// store's own readers (BlobInfo.open, BlobWriter.openReader), never from a location; a store of
// local files also lets the suite check its files (where a blob lives, that no temp file stays).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DigestMismatchError, readChunks, type BlobInfo, type BlobStore, type BlobWriter } from '../../src/cache/blob-store.ts';

export interface BlobStoreFixture {
  readonly store: BlobStore;
  /** For a store of local files: where a committed blob must live and where a writer writes. */
  readonly files?: {
    pathOf(digest: string): string;
    tempPathOf(writer: BlobWriter): string;
  };
  cleanup(): Promise<void>;
}

/** Every byte of a committed blob, read through its reader. */
async function readBlob(info: BlobInfo): Promise<Buffer> {
  const reader = await info.open();
  expect(reader).toBeDefined();
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of readChunks(reader!, info.size, 100_003)) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks);
  } finally {
    await reader!.close();
  }
}

/** What stat() says of a blob, without its reader. */
const described = (info: BlobInfo | undefined) => info && { digest: info.digest, size: info.size };

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Splits bytes into uneven chunks (including an empty one) as a network would deliver them. */
function chunksOf(bytes: Buffer, sizes: readonly number[] = [1, 0, 7, 4096, 65_536, 100_003]): Buffer[] {
  const chunks: Buffer[] = [];
  let offset = 0;
  for (let i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

async function writeAll(writer: BlobWriter, bytes: Buffer): Promise<void> {
  for (const chunk of chunksOf(bytes)) await writer.write(chunk);
}

export function blobStoreContract(name: string, makeStore: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let fixture: BlobStoreFixture;
    let store: BlobStore;

    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    it('writes a blob in chunks, commits it and finds it by digest', async () => {
      const bytes = randomBytes(1024 * 1024 + 333);
      const digest = sha256(bytes);
      expect(await store.stat(digest)).toBeUndefined();
      const writer = await store.createWriter(digest);
      expect(writer.digest).toBe(digest);
      const files = fixture.files;
      if (files) expect(existsSync(files.tempPathOf(writer))).toBe(true);
      await writeAll(writer, bytes);
      const info = await writer.commit();
      expect(info.digest).toBe(digest);
      expect(info.size).toBe(bytes.length);
      expect((await readBlob(info)).equals(bytes)).toBe(true);
      if (files) {
        expect(isAbsolute(files.pathOf(digest))).toBe(true);
        expect((await readFile(files.pathOf(digest))).equals(bytes)).toBe(true);
        expect(existsSync(files.tempPathOf(writer))).toBe(false);
      }
      expect(described(await store.stat(digest))).toEqual(described(info));
    });

    it('stores sha512 blobs and empty blobs', async () => {
      const bytes = randomBytes(5000);
      const digest = `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
      const writer = await store.createWriter(digest);
      await writeAll(writer, bytes);
      const info = await writer.commit();
      if (fixture.files) expect((await readFile(fixture.files.pathOf(digest))).equals(bytes)).toBe(true);
      expect((await readBlob(info)).equals(bytes)).toBe(true);
      expect(described(await store.stat(digest))).toEqual({ digest, size: 5000 });

      const empty = sha256(Buffer.alloc(0));
      const emptyInfo = await (await store.createWriter(empty)).commit();
      expect(emptyInfo.size).toBe(0);
      expect(described(await store.stat(empty))).toEqual(described(emptyInfo));
      expect((await readBlob(emptyInfo)).length).toBe(0);
    });

    it('answers undefined for an unknown digest', async () => {
      expect(await store.stat(sha256(Buffer.from('nothing here')))).toBeUndefined();
    });

    it('rejects digests it cannot name a file by', async () => {
      const bad = ['sha256:abc', `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`, 'sha256:../../../etc/passwd', `sha256:${'a'.repeat(63)}/`, ''];
      for (const digest of bad) {
        await expect(store.createWriter(digest), digest).rejects.toThrow();
        await expect(store.stat(digest), digest).rejects.toThrow();
      }
    });

    it('advances written as each chunk lands', async () => {
      const bytes = randomBytes(300_000);
      const writer = await store.createWriter(sha256(bytes));
      expect(writer.written).toBe(0);
      let total = 0;
      for (const chunk of chunksOf(bytes)) {
        await writer.write(chunk);
        total += chunk.length;
        expect(writer.written).toBe(total);
      }
      await writer.commit();
    });

    it('lets a reader follow the bytes up to written while they grow, and past the commit', async () => {
      const bytes = randomBytes(2 * 1024 * 1024);
      const writer = await store.createWriter(sha256(bytes));
      const reader = await writer.openReader();
      try {
        let readTo = 0;
        const buf = Buffer.alloc(bytes.length);
        const readUpToWritten = async () => {
          const end = writer.written;
          while (readTo < end) {
            const bytesRead = await reader.read(buf, readTo, end - readTo, readTo);
            expect(bytesRead).toBeGreaterThan(0);
            readTo += bytesRead;
          }
        };
        for (const chunk of chunksOf(bytes, [70_000, 1, 300_000])) {
          // Read concurrently with the write in flight, then after it landed.
          await Promise.all([writer.write(chunk), readUpToWritten()]);
          await readUpToWritten();
          expect(readTo).toBe(writer.written);
        }
        expect(buf.equals(bytes)).toBe(true);
        await writer.commit();
        // Still readable after the commit, and a reader opened after it reads the committed blob.
        expect(await reader.read(Buffer.alloc(10), 0, 10, 0)).toBe(10);
        const late = await writer.openReader();
        const tail = Buffer.alloc(100);
        expect(await late.read(tail, 0, 100, bytes.length - 100)).toBe(100);
        expect(tail.equals(bytes.subarray(bytes.length - 100))).toBe(true);
        await late.close();
      } finally {
        await reader.close();
      }
    });

    it('opens a running write by its writer\'s local name from elsewhere, the blob once committed, nothing once aborted; a store without local files names none', async () => {
      if (!store.openFilling) {
        // Then no fill of it may be handed to another thread (fill-handover.ts asks for the name).
        const writer = await store.createWriter(sha256(Buffer.from('no local file')));
        expect(writer.localName).toBeUndefined();
        await writer.abort();
        return;
      }
      const bytes = randomBytes(300_000);
      const digest = sha256(bytes);
      const writer = await store.createWriter(digest);
      const name = writer.localName!;
      expect(name).toBeTruthy();
      // Only that digest's writer names are opened: no paths, no other digest's writes.
      const other = sha256(Buffer.from('another blob'));
      for (const [d, n] of [[digest, `../${name}`], [digest, `${name}/..`], [digest, '..'], [digest, `${name}x`], [other, name], [digest, name.replace(/.$/, '/')]] as const) {
        expect(await store.openFilling(d, n), `${d} ${n}`).toBeUndefined();
      }
      await writer.write(bytes.subarray(0, 1000));
      const running = await store.openFilling(digest, name);
      expect(running).toBeDefined();
      const head = Buffer.alloc(1000);
      expect(await running!.read(head, 0, 1000, 0)).toBe(1000);
      expect(head.equals(bytes.subarray(0, 1000))).toBe(true);
      await writer.write(bytes.subarray(1000));
      await writer.commit();
      // Renamed into place: the name now leads to the committed blob.
      const committed = await store.openFilling(digest, name);
      const tail = Buffer.alloc(100);
      expect(await committed!.read(tail, 0, 100, bytes.length - 100)).toBe(100);
      expect(tail.equals(bytes.subarray(bytes.length - 100))).toBe(true);
      await Promise.all([running!.close(), committed!.close()]);

      const failed = await store.createWriter(other);
      await failed.write(Buffer.from('another'));
      await failed.abort();
      expect(await store.openFilling(other, failed.localName!)).toBeUndefined();
    });

    it('throws DigestMismatchError for wrong bytes and keeps nothing', async () => {
      const expected = sha256(Buffer.from('what the upstream promised'));
      const bytes = randomBytes(70_000);
      const writer = await store.createWriter(expected);
      await writeAll(writer, bytes);
      const err = await writer.commit().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect((err as DigestMismatchError).expected).toBe(expected);
      expect((err as DigestMismatchError).actual).toBe(sha256(bytes));
      expect(await store.stat(expected)).toBeUndefined();
      if (fixture.files) {
        expect(existsSync(fixture.files.pathOf(expected))).toBe(false);
        expect(existsSync(fixture.files.tempPathOf(writer))).toBe(false);
        expect(await readdir(dirname(fixture.files.tempPathOf(writer)))).toEqual([]);
      }
      await writer.abort();
    });

    it('abort removes the temp file, is idempotent and is harmless after commit', async () => {
      const bytes = randomBytes(10_000);
      const digest = sha256(bytes);
      const aborted = await store.createWriter(digest);
      await aborted.write(bytes.subarray(0, 5000));
      await aborted.abort();
      await aborted.abort();
      if (fixture.files) expect(existsSync(fixture.files.tempPathOf(aborted))).toBe(false);
      expect(await store.stat(digest)).toBeUndefined();
      await expect(aborted.write(bytes)).rejects.toThrow();

      const committed = await store.createWriter(digest);
      await committed.write(bytes);
      const info = await committed.commit();
      await committed.abort();
      expect(described(await store.stat(digest))).toEqual(described(info));
      expect((await readBlob(info)).equals(bytes)).toBe(true);
      if (fixture.files) expect(await readdir(dirname(fixture.files.tempPathOf(committed)))).toEqual([]);
    });

    it('commits a digest that is already present, concurrently too', async () => {
      const bytes = randomBytes(200_000);
      const digest = sha256(bytes);
      const first = await store.createWriter(digest);
      await writeAll(first, bytes);
      const info = await first.commit();

      const writers = await Promise.all([1, 2, 3].map(() => store.createWriter(digest)));
      const files = fixture.files;
      if (files) expect(new Set(writers.map((w) => files.tempPathOf(w))).size).toBe(3);
      await Promise.all(writers.map((w) => writeAll(w, bytes)));
      const infos = await Promise.all(writers.map((w) => w.commit()));
      for (const again of infos) expect(described(again)).toEqual(described(info));
      expect((await readBlob(info)).equals(bytes)).toBe(true);
      if (files) expect(await readdir(dirname(files.tempPathOf(first)))).toEqual([]);
    });

    it('removeTempFiles removes what a crash left behind and nothing else', async () => {
      expect(await store.removeTempFiles()).toBe(0);
      const kept = randomBytes(1000);
      const keptWriter = await store.createWriter(sha256(kept));
      await keptWriter.write(kept);
      const info = await keptWriter.commit();

      const left = await Promise.all([randomBytes(100), randomBytes(200)].map(async (b) => {
        const w = await store.createWriter(sha256(b));
        await w.write(b);
        return w;
      }));
      expect(await store.removeTempFiles()).toBe(2);
      const files = fixture.files;
      if (files) for (const w of left) expect(existsSync(files.tempPathOf(w))).toBe(false);
      expect(await store.removeTempFiles()).toBe(0);
      expect(described(await store.stat(sha256(kept)))).toEqual(described(info));
      // A writer whose file was swept can still be aborted.
      for (const w of left) await w.abort();
    });

    it('answers a ping when usable', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('lists committed blobs with size and last use, not temp files', async () => {
      const listed = async () => {
        const all = [];
        for await (const b of store.list()) all.push(b);
        return all.sort((a, b) => a.digest.localeCompare(b.digest));
      };
      expect(await listed()).toEqual([]);
      const before = Date.now() - 1000;
      const blobs = [randomBytes(1000), randomBytes(70_000), Buffer.alloc(0)];
      for (const b of blobs) {
        const w = await store.createWriter(sha256(b));
        await w.write(b);
        await w.commit();
      }
      const pending = await store.createWriter(sha256(randomBytes(10)));
      await pending.write(randomBytes(5));
      const all = await listed();
      expect(all.map(({ digest, size }) => ({ digest, size }))).toEqual(
        blobs.map((b) => ({ digest: sha256(b), size: b.length })).sort((a, b) => a.digest.localeCompare(b.digest)),
      );
      for (const b of all) expect(b.lastUsed).toBeGreaterThan(before);
      await pending.abort();
    });

    it('keeps a recorded use across a fresh listing, and removes blobs', async () => {
      const bytes = randomBytes(2000);
      const w = await store.createWriter(sha256(bytes));
      await w.write(bytes);
      const info = await w.commit();
      const longAgo = Date.UTC(2020, 0, 1);
      await store.touch(sha256(bytes), longAgo);
      for await (const b of store.list()) expect(Math.abs(b.lastUsed - longAgo)).toBeLessThan(1000);
      // An open reader keeps reading a removed blob (no pull in progress breaks).
      const reader = (await info.open())!;
      expect(await store.remove(sha256(bytes))).toBe(true);
      expect(await store.remove(sha256(bytes))).toBe(false);
      expect(await store.stat(sha256(bytes))).toBeUndefined();
      const bytesRead = await reader.read(Buffer.alloc(2000), 0, 2000, 0);
      expect(bytesRead).toBe(2000);
      await reader.close();
      // A handle to a blob removed since opens nothing.
      expect(await info.open()).toBeUndefined();
      await store.touch(sha256(bytes), Date.now()); // gone: a no-op, not an error
    });
  });
}
