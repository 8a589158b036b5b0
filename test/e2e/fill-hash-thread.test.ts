// A real wharf whose fills hash on the hash thread (the default), with threads: 1 and 2, and one
// hashing on the main thread (cache.hashThread: false), against an upstream that lies: wrong
// bytes of the right length, a body cut short of its length, a drip below the minimum rate.
// None of them is ever cached or answered as a complete body; an honest blob is, byte for byte,
// with fsync on. Real sockets on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBlobUpstream, type BlobBehaviour, type BlobUpstream } from '../support/blob-upstream.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { sha256 } from '../support/test-images.ts';
import { fetchBlob } from '../support/fetch-blob.ts';

const TIMEOUTS = { blobMinBytesPerSecond: 4096, blobRateWindowMs: 400, bodyIdleMs: 5000 };

const setups = [
  { label: 'hash thread, threads: 1', threads: 1, hashThread: true },
  { label: 'hash thread, threads: 2', threads: 2, hashThread: true },
  { label: 'main-thread hashing, threads: 1', threads: 1, hashThread: false },
];

describe.each(setups)('cold fills with a lying upstream ($label)', ({ threads, hashThread }) => {
  let upstream: BlobUpstream;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startBlobUpstream();
    wharf = await startWharf({ threads, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], timeouts: TIMEOUTS, cache: { hashThread, fsync: true } });
  });

  afterAll(async () => {
    await upstream?.stop();
    await wharf?.stop();
  });

  const nothingKept = async (digest: string) => {
    await wharf.deps.blobs.settled();
    expect(await wharf.deps.blobStore.stat(digest)).toBeUndefined();
    expect(await readdir(join(wharf.dataDir, 'blobs', 'tmp')).catch(() => [])).toEqual([]);
  };

  it('caches an honest 20 MiB blob and serves it byte for byte, cold and cached', async () => {
    const blob = randomBytes(20 << 20);
    const digest = upstream.serve(blob);
    for (let i = 0; i < 2; i++) {
      const res = await fetchBlob(`${wharf.url}/v2/library/honest/blobs/${digest}`);
      expect(res.status).toBe(200);
      expect(res.complete).toBe(true);
      expect(sha256(res.body)).toBe(digest);
      await wharf.deps.blobs.settled();
    }
    expect(upstream.gets(digest)).toBe(1);
    expect(await wharf.deps.blobStore.stat(digest)).toMatchObject({ size: blob.length });
  });

  const lies: Array<[string, (size: number) => BlobBehaviour]> = [
    ['wrong bytes of the right length', (size) => ({ kind: 'corrupt', at: size - 2 })],
    ['a body cut short of its length', (size) => ({ kind: 'short', bytes: size >> 1 })],
    ['a drip below the minimum rate', () => ({ kind: 'drip', bytes: 256, everyMs: 100 })],
  ];

  it.each(lies)('never caches or completes %s', async (_what, behaviour) => {
    const blob = randomBytes(6 << 20);
    const digest = upstream.serve(blob, behaviour(blob.length));
    const res = await fetchBlob(`${wharf.url}/v2/library/liar/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.complete).toBe(false);
    expect(res.body.length).toBeLessThan(blob.length);
    await nothingKept(digest);
    // The upstream mends its ways: the next request fetches afresh and caches the true bytes.
    upstream.behave(digest, { kind: 'whole' });
    const again = await fetchBlob(`${wharf.url}/v2/library/liar/blobs/${digest}`);
    expect(again.complete).toBe(true);
    expect(sha256(again.body)).toBe(digest);
    await wharf.deps.blobs.settled();
    expect(await wharf.deps.blobStore.stat(digest)).toMatchObject({ size: blob.length });
  });
});
