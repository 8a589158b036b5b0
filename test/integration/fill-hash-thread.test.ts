// Fills whose bytes are hashed on a hash thread (the Worker and the native one, each), from
// real HTTP bodies (undici over loopback, read by 'data' events): a body whose bytes lie about
// their digest, one cut short of its length, one too slow, and a Worker stopped mid-fill all
// fail the fill and leave nothing cached and no temp file; readers never see the end of a fill that failed. A correct one is
// released to readers once verified, before the datasync and the rename, and only then cached.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { DigestMismatchError, type BlobWriter } from '../../src/cache/blob-store.ts';
import { createDiskBlobStore } from '../../src/cache/disk-blob-store.ts';
import { HashOffload, HashThreadError, type HashThread } from '../../src/cache/hash-offload.ts';
import { loadNativeHashThread } from '../../src/cache/native-hash-thread.ts';
import { BlobFill, runFill, ShortBodyError } from '../../src/proxy/blob-fill.ts';
import { SlowBodyError } from '../../src/proxy/rate-floor.ts';
import { makeTempDir } from '../support/temp-dir.ts';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Send = (res: import('node:http').ServerResponse) => void;

/** A loopback server answering every GET with `send`, and an undici body from it. */
async function bodyFrom(send: Send, length: number) {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(length) });
    send(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new Agent();
  cleanups.push(async () => {
    await agent.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`, { dispatcher: agent });
  return res.body;
}

/** The two hash threads: a Worker, and the native thread (native/hash.c, built by npm ci). */
const threads: Array<{ label: string; make: () => HashThread }> = [
  { label: 'worker', make: () => new HashOffload() },
  {
    label: 'native',
    make: () => {
      const native = loadNativeHashThread();
      if (native instanceof Error) throw native;
      return native;
    },
  },
];

async function setup(fsync = false, make: () => HashThread = threads[0]!.make) {
  const dir = await makeTempDir('wharf-hash-thread-');
  const hashOffload = make();
  cleanups.push(dir.cleanup, () => hashOffload.close());
  const store = createDiskBlobStore(dir.path, { fsync, hashOffload });
  const tempFiles = () => readdir(join(dir.path, 'blobs', 'tmp')).catch(() => []);
  return { store, hashOffload, tempFiles };
}

/** Watches a fill: whether readers were ever told it ended (may send the last byte). */
function watch(fill: BlobFill) {
  const seen = { ended: false, endedWhileFilling: false };
  const done = (async () => {
    while (fill.state === 'filling') {
      if (fill.ended) {
        seen.ended = true;
        seen.endedWhileFilling = true;
      }
      await fill.changed();
    }
    if (fill.ended) seen.ended = true;
  })();
  return { seen, done };
}

describe.each(threads)('fills hashed on the $label hash thread, from real HTTP bodies', ({ make }) => {
  it('caches a correct 12 MiB body, released to readers before the commit finished', async () => {
    const { store, tempFiles } = await setup(true, make);
    const bytes = randomBytes(12 << 20);
    const writer = await store.createWriter(sha256(bytes));
    const fill = new BlobFill(sha256(bytes), bytes.length, () => writer.openReader());
    const watcher = watch(fill);
    await runFill(fill, writer, await bodyFrom((res) => res.end(bytes), bytes.length));
    await watcher.done;
    expect(fill.state).toBe('complete');
    // The datasync and the rename came after readers could finish.
    expect(watcher.seen.endedWhileFilling).toBe(true);
    const info = await store.stat(sha256(bytes));
    expect(info?.size).toBe(bytes.length);
    const reader = (await info!.open())!;
    const back = Buffer.alloc(bytes.length);
    expect(await reader.read(back, 0, back.length, 0)).toBe(bytes.length);
    await reader.close();
    expect(back.equals(bytes)).toBe(true);
    expect(await tempFiles()).toEqual([]);
  });

  it('fails a body whose bytes do not match the digest: nothing cached, no temp file, never ended', async () => {
    const { store, tempFiles } = await setup(false, make);
    const bytes = randomBytes(6 << 20);
    const wrong = Buffer.from(bytes);
    wrong[wrong.length - 3]! ^= 0xff;
    const writer = await store.createWriter(sha256(bytes));
    const fill = new BlobFill(sha256(bytes), bytes.length, () => writer.openReader());
    const watcher = watch(fill);
    await runFill(fill, writer, await bodyFrom((res) => res.end(wrong), wrong.length));
    await watcher.done;
    expect(fill.state).toBe('failed');
    expect(fill.error).toBeInstanceOf(DigestMismatchError);
    expect(watcher.seen.ended).toBe(false);
    expect(fill.readable).toBe(fill.written - 1);
    expect(await store.stat(sha256(bytes))).toBeUndefined();
    expect(await tempFiles()).toEqual([]);
  });

  it('fails a body cut short of its length', async () => {
    const { store, tempFiles } = await setup(false, make);
    const bytes = randomBytes(4 << 20);
    const writer = await store.createWriter(sha256(bytes));
    const fill = new BlobFill(sha256(bytes), bytes.length, () => writer.openReader());
    const watcher = watch(fill);
    const cut: Send = (res) => res.write(bytes.subarray(0, 3 << 20), () => setTimeout(() => res.destroy(), 20));
    await runFill(fill, writer, await bodyFrom(cut, bytes.length));
    await watcher.done;
    expect(fill.state).toBe('failed');
    expect(watcher.seen.ended).toBe(false);
    expect(await store.stat(sha256(bytes))).toBeUndefined();
    expect(await tempFiles()).toEqual([]);
  });

  it('fails a body that ends early but cleanly (no length check by the transport) as short', async () => {
    const { store } = await setup(false, make);
    const bytes = randomBytes(1 << 20);
    const writer = await store.createWriter(sha256(bytes));
    // The fill expects more than the body (whose own length is honest) brings.
    const fill = new BlobFill(sha256(bytes), bytes.length + 10, () => writer.openReader());
    await runFill(fill, writer, await bodyFrom((res) => res.end(bytes), bytes.length));
    expect(fill.state).toBe('failed');
    expect(fill.error).toBeInstanceOf(ShortBodyError);
    expect(await store.stat(sha256(bytes))).toBeUndefined();
  });

  it('cuts a body slower than the minimum rate', async () => {
    const { store, tempFiles } = await setup(false, make);
    const bytes = randomBytes(64 << 10);
    const writer = await store.createWriter(sha256(bytes));
    const fill = new BlobFill(sha256(bytes), bytes.length, () => writer.openReader());
    let timer: NodeJS.Timeout | undefined;
    cleanups.push(async () => clearInterval(timer));
    let offset = 0;
    const drip: Send = (res) => {
      timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        res.write(bytes.subarray(offset, (offset += 64)));
      }, 50);
    };
    const started = Date.now();
    await runFill(fill, writer, await bodyFrom(drip, bytes.length), { minRate: { bytesPerSecond: 4096, windowMs: 300 } });
    expect(fill.state).toBe('failed');
    expect(fill.error).toBeInstanceOf(SlowBodyError);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await store.stat(sha256(bytes))).toBeUndefined();
    expect(await tempFiles()).toEqual([]);
  });

  it('lets the hash lag the writes, releasing each chunk only once it is hashed and written', async () => {
    const { store } = await setup(false, make);
    const bytes = randomBytes(16 << 20);
    const writer = await store.createWriter(sha256(bytes));
    const CHUNK_BYTES = 1 << 20;
    let released = 0;
    for (let at = 0; at < bytes.length; at += CHUNK_BYTES) {
      // Staging memory as a fill lends it (shared, so the hash thread reads it where it is).
      const staging = Buffer.from(new SharedArrayBuffer(CHUNK_BYTES));
      bytes.copy(staging, 0, at, at + CHUNK_BYTES);
      await writer.write(staging, () => {
        released++;
        // The buffer is reused at once, as a fill's would be: released early, this would be
        // hashed or written as zeros, and the digest or the bytes read back would not match.
        staging.fill(0);
      });
    }
    const info = await writer.commit();
    expect(released).toBe(16);
    expect(info.size).toBe(bytes.length);
    const reader = (await info.open())!;
    const back = Buffer.alloc(bytes.length);
    expect(await reader.read(back, 0, back.length, 0)).toBe(bytes.length);
    await reader.close();
    expect(back.equals(bytes)).toBe(true);
  });

  it('closes the file of a writer aborted under a write only once that write settled, and keeps nothing', async () => {
    const { store, tempFiles } = await setup(false, make);
    const bytes = randomBytes(64 << 20);
    const writer = await store.createWriter(sha256(bytes));
    const order: string[] = [];
    // Not awaited: the abort comes while the thread is still writing. Closed under it, the
    // descriptor's number could be handed to the next file opened and the write land there.
    const writing = writer.write(bytes).then(
      () => order.push('write'),
      () => order.push('write'),
    );
    await writer.abort();
    order.push('abort');
    await writing;
    expect(order).toEqual(['write', 'abort']);
    expect(await tempFiles()).toEqual([]);
    expect(await store.stat(sha256(bytes))).toBeUndefined();
  });

  it('hashes concurrent fills apart on the one thread', async () => {
    const { store } = await setup(false, make);
    const blobs = Array.from({ length: 4 }, (_, i) => randomBytes((2 + i) << 20));
    const fills = await Promise.all(
      blobs.map(async (bytes) => {
        const writer: BlobWriter = await store.createWriter(sha256(bytes));
        const fill = new BlobFill(sha256(bytes), bytes.length, () => writer.openReader());
        await runFill(fill, writer, await bodyFrom((res) => res.end(bytes), bytes.length));
        return fill;
      }),
    );
    expect(fills.map((f) => f.state)).toEqual(['complete', 'complete', 'complete', 'complete']);
    for (const bytes of blobs) expect((await store.stat(sha256(bytes)))?.size).toBe(bytes.length);
  });
});

describe('fills hashed on the worker hash thread, when the thread goes', () => {
  it('fails the fill when the hash thread stops mid-fill, and caches nothing', async () => {
    const { store, hashOffload, tempFiles } = await setup();
    const bytes = randomBytes(8 << 20);
    const writer = await store.createWriter(sha256(bytes));
    const fill = new BlobFill(sha256(bytes), bytes.length, () => writer.openReader());
    // Half the body, then the thread goes, then the rest.
    const halves: Send = (res) => res.write(bytes.subarray(0, 4 << 20), () => setTimeout(() => void hashOffload.close().then(() => res.end(bytes.subarray(4 << 20))), 50));
    await runFill(fill, writer, await bodyFrom(halves, bytes.length));
    expect(fill.state).toBe('failed');
    expect(fill.error).toBeInstanceOf(HashThreadError);
    expect(await store.stat(sha256(bytes))).toBeUndefined();
    expect(await tempFiles()).toEqual([]);
    // A stopped offload refuses new writers' hashes rather than hashing nothing.
    await expect(store.createWriter(sha256(bytes))).rejects.toBeInstanceOf(HashThreadError);
  });

  it('stops the idle thread and starts a new one for the next fill', async () => {
    const dir = await makeTempDir('wharf-hash-idle-');
    const hashOffload = new HashOffload({ idleStopMs: 100 });
    cleanups.push(dir.cleanup, () => hashOffload.close());
    const store = createDiskBlobStore(dir.path, { fsync: false, hashOffload });
    const fillOnce = async (bytes: Buffer) => {
      const writer = await store.createWriter(sha256(bytes));
      const fill = new BlobFill(sha256(bytes), bytes.length, () => writer.openReader());
      await runFill(fill, writer, await bodyFrom((res) => res.end(bytes), bytes.length));
      return fill.state;
    };
    expect(await fillOnce(randomBytes(1 << 20))).toBe('complete');
    expect(hashOffload.running).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(hashOffload.running).toBe(false);
    expect(await fillOnce(randomBytes(1 << 20))).toBe('complete');
    expect(hashOffload.running).toBe(true);
    // A fill that holds its hash keeps the thread, however long its body pauses.
    const bytes = randomBytes(2 << 20);
    const writer = await store.createWriter(sha256(bytes));
    const fill = new BlobFill(sha256(bytes), bytes.length, () => writer.openReader());
    const pausing: Send = (res) => res.write(bytes.subarray(0, 1 << 20), () => setTimeout(() => res.end(bytes.subarray(1 << 20)), 400));
    await runFill(fill, writer, await bodyFrom(pausing, bytes.length));
    expect(fill.state).toBe('complete');
  });
});
