// Upstreams that fight back with blobs (issue 11): a body dripped just fast enough to dodge the
// idle timeout must be cut within about one rate window, not after the 20-30 s idle budget; and
// with cache.verifiedRangesOnly a Range on an uncached blob must never carry bytes the digest
// check has not passed. Real wharf, real sockets, a hostile stand-in upstream on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBlobUpstream, type BlobUpstream } from '../support/blob-upstream.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { metricValue } from '../support/metrics.ts';
import { mountTmpfs, type Tmpfs } from '../support/tmpfs.ts';
import { sha256 } from '../support/test-images.ts';
import { fetchBlob, type Fetched } from '../support/fetch-blob.ts';
import { Agent, request } from 'undici';

const WINDOW_MS = 500;
const MIN_BYTES_PER_SECOND = 4096; // 2048 bytes per window
// 2560 B/s: under the floor, yet a chunk every 100 ms keeps any idle timeout happy; a 64 KiB blob
// would take 25 s at this pace.
const SLOW_DRIP = { kind: 'drip', bytes: 256, everyMs: 100 } as const;
const TIMEOUTS = { blobMinBytesPerSecond: MIN_BYTES_PER_SECOND, blobRateWindowMs: WINDOW_MS, bodyIdleMs: 5000 };

const errorCode = (f: Fetched) => (JSON.parse(f.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code;

async function tempFiles(dataDir: string): Promise<string[]> {
  return readdir(join(dataDir, 'blobs', 'tmp')).catch(() => []);
}

describe('a blob body slower than blobMinBytesPerSecond', () => {
  let upstream: BlobUpstream;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startBlobUpstream();
    wharf = await startWharf({
      upstreams: [
        { name: 'docker.io', url: upstream.url, default: true },
        { name: 'lenient.example', url: upstream.url, timeouts: { blobMinBytesPerSecond: 0 } },
      ],
      timeouts: TIMEOUTS,
    });
  });

  afterAll(async () => {
    // The upstream first: it ends any drip still feeding a fill.
    await upstream?.stop();
    await wharf?.stop();
  });

  it('is cut within about one rate window: nothing cached, no temp file, counted, and the next request fetches afresh', async () => {
    const blob = randomBytes(64 << 10);
    const digest = upstream.serve(blob, SLOW_DRIP);
    const url = `${wharf.url}/v2/library/drip/blobs/${digest}`;
    const cut = await fetchBlob(url, { deadlineMs: 4000 });
    expect(cut.status).toBe(200);
    expect(cut.timedOut).toBe(false); // wharf ended it, not our 4 s deadline
    expect(cut.complete).toBe(false);
    expect(cut.body.length).toBeLessThan(blob.length);
    // The first window boundary (500 ms) sees ~1280 bytes < 2048; allow for a busy machine.
    expect(cut.doneMs).toBeLessThan(WINDOW_MS * 3);
    await wharf.deps.blobs.settled();
    expect(await wharf.deps.blobStore.stat(digest)).toBeUndefined();
    expect(await tempFiles(wharf.dataDir)).toEqual([]);
    expect(await metricValue(wharf.url, 'wharf_upstream_failures_total', { upstream: 'docker.io', reason: 'slow-body' })).toBe(1);

    upstream.behave(digest, { kind: 'whole' });
    const again = await fetchBlob(url);
    expect(again.status).toBe(200);
    expect(again.complete).toBe(true);
    expect(sha256(again.body)).toBe(digest);
    expect(upstream.gets(digest)).toBe(2);
    await wharf.deps.blobs.settled();
    expect(await wharf.deps.blobStore.stat(digest)).toMatchObject({ size: blob.length });
  });

  it('lets a body that stays above the floor for several windows finish and be cached', async () => {
    const blob = randomBytes(64 << 10);
    // 40 KiB/s: 1.6 s, three windows.
    const digest = upstream.serve(blob, { kind: 'drip', bytes: 4096, everyMs: 100 });
    const res = await fetchBlob(`${wharf.url}/v2/library/steady/blobs/${digest}`);
    expect(res.complete).toBe(true);
    expect(sha256(res.body)).toBe(digest);
    expect(res.doneMs).toBeGreaterThan(WINDOW_MS * 2);
    await wharf.deps.blobs.settled();
    expect(await wharf.deps.blobStore.stat(digest)).toMatchObject({ size: blob.length });
  });

  it('is not cut on an upstream whose own timeouts set no minimum', async () => {
    const digest = upstream.serve(randomBytes(64 << 10), SLOW_DRIP);
    const res = await fetchBlob(`${wharf.url}/v2/library/lenient/blobs/${digest}?ns=lenient.example`, { deadlineMs: WINDOW_MS * 4 });
    expect(res.status).toBe(200);
    expect(res.timedOut).toBe(true); // still dripping when we gave up, four windows in
    expect(await metricValue(wharf.url, 'wharf_upstream_failures_total', { upstream: 'lenient.example', reason: 'slow-body' })).toBe(0);
  });
});

describe('cache.verifiedRangesOnly: true', () => {
  let upstream: BlobUpstream;
  let wharf: TestWharf;
  const STALL_MS = 400;
  const stall = { kind: 'stall', afterBytes: 64 << 10, pauseMs: STALL_MS } as const;

  beforeAll(async () => {
    upstream = await startBlobUpstream();
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], timeouts: TIMEOUTS, cache: { verifiedRangesOnly: true } });
  });

  afterAll(async () => {
    await upstream?.stop();
    await wharf?.stop();
  });

  it('answers a Range whose upstream bytes do not match the digest with 502, never a 206 of those bytes', async () => {
    const blob = randomBytes(256 << 10);
    // The flipped byte is inside the range, and the fill is still running when the range could go out.
    const digest = upstream.serve(blob, { kind: 'corrupt', at: 1000, then: stall });
    const url = `${wharf.url}/v2/library/forged/blobs/${digest}`;
    const res = await fetchBlob(url, { headers: { range: 'bytes=0-4095' } });
    expect(res.status).toBe(502);
    expect(errorCode(res)).toBe('UNKNOWN');
    expect(res.body.includes(blob.subarray(0, 64))).toBe(false);
    await wharf.deps.blobs.settled();
    expect(await wharf.deps.blobStore.stat(digest)).toBeUndefined();
    expect(await tempFiles(wharf.dataDir)).toEqual([]);

    // The upstream mends its ways: the next Range starts a fresh fill and gets the right bytes.
    upstream.behave(digest, { kind: 'whole' });
    const again = await fetchBlob(url, { headers: { range: 'bytes=0-4095' } });
    expect(again.status).toBe(206);
    expect(again.body.equals(blob.subarray(0, 4096))).toBe(true);
    expect(upstream.gets(digest)).toBe(2);
  });

  it('answers a Range of a correct uncached blob with 206 only once the whole blob is verified and stored', async () => {
    const blob = randomBytes(256 << 10);
    const digest = upstream.serve(blob, stall);
    const res = await fetchBlob(`${wharf.url}/v2/library/honest/blobs/${digest}`, { headers: { range: 'bytes=100-199' } });
    // Stored by the time the answer starts: checked before anything else can await.
    const stored = wharf.deps.blobStore.stat(digest);
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes 100-199/${blob.length}`);
    expect(res.headers['x-wharf-cache']).toBe('miss');
    expect(res.body.equals(blob.subarray(100, 200))).toBe(true);
    expect(res.headersMs).toBeGreaterThanOrEqual(STALL_MS - 50);
    expect(await stored).toMatchObject({ size: blob.length });
    expect(upstream.gets(digest)).toBe(1);
  });

  it('answers a Range that joins a running fill only after that fill is verified', async () => {
    const blob = randomBytes(256 << 10);
    const digest = upstream.serve(blob, stall);
    const url = `${wharf.url}/v2/library/joined/blobs/${digest}`;
    const whole = fetchBlob(url);
    await new Promise((r) => setTimeout(r, 100)); // the fill is running, stalled
    const ranged = await fetchBlob(url, { headers: { range: 'bytes=-10' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers['x-wharf-cache']).toBe('coalesced');
    expect(ranged.body.equals(blob.subarray(blob.length - 10))).toBe(true);
    expect(ranged.headersMs).toBeGreaterThanOrEqual(STALL_MS - 150);
    const first = await whole;
    expect(first.complete).toBe(true);
    expect(sha256(first.body)).toBe(digest);
    expect(upstream.gets(digest)).toBe(1);
  });

  it('answers a Range whose fill fails for another reason (too slow) with 503', async () => {
    const digest = upstream.serve(randomBytes(64 << 10), SLOW_DRIP);
    const res = await fetchBlob(`${wharf.url}/v2/library/trickle/blobs/${digest}`, { headers: { range: 'bytes=0-99' }, deadlineMs: 4000 });
    expect(res.status).toBe(503);
    expect(errorCode(res)).toBe('UNAVAILABLE');
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.doneMs).toBeLessThan(WINDOW_MS * 3);
  });

  it('leaves HEAD, plain GETs and Ranges of cached blobs as they were', async () => {
    const blob = randomBytes(256 << 10);
    const digest = upstream.serve(blob, stall);
    const url = `${wharf.url}/v2/library/plain/blobs/${digest}`;
    const head = await fetchBlob(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(blob.length));
    expect(upstream.gets(digest)).toBe(0);

    // A plain GET still streams from the first bytes, before the upstream's stall ends.
    const agent = new Agent({ pipelining: 0 });
    const started = performance.now();
    const res = await request(url, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    let firstByteMs: number | undefined;
    for await (const chunk of res.body) {
      firstByteMs ??= performance.now() - started;
      chunks.push(chunk as Buffer);
    }
    await agent.destroy();
    expect(firstByteMs!).toBeLessThan(STALL_MS - 100);
    expect(sha256(Buffer.concat(chunks))).toBe(digest);

    await wharf.deps.blobs.settled();
    const cachedRange = await fetchBlob(url, { headers: { range: 'bytes=10-19' } });
    expect(cachedRange.status).toBe(206);
    expect(cachedRange.headers['x-wharf-cache']).toBe('hit');
    expect(cachedRange.body.equals(blob.subarray(10, 20))).toBe(true);
    expect(upstream.gets(digest)).toBe(1);
  });
});

describe('cache.verifiedRangesOnly: true on a disk that cannot take the blob (pass-through)', () => {
  let upstream: BlobUpstream;
  let disk: Tmpfs;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startBlobUpstream();
    disk = await mountTmpfs(1 << 20);
    wharf = await startWharf({ dataDir: disk.path, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], timeouts: TIMEOUTS, cache: { verifiedRangesOnly: true } });
  });

  afterAll(async () => {
    await upstream?.stop();
    await wharf?.stop();
    await disk?.unmount();
  });

  it('answers a Range with the whole blob (200), verified, since the range alone cannot be checked', async () => {
    const blob = randomBytes(2 << 20);
    const digest = upstream.serve(blob);
    const res = await fetchBlob(`${wharf.url}/v2/library/big/blobs/${digest}`, { headers: { range: 'bytes=0-4095' } });
    expect(res.headers['x-wharf-cache']).toBe('bypass');
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(sha256(res.body)).toBe(digest);
  });

  it('never completes an answer whose bytes do not match the digest', async () => {
    const blob = randomBytes(2 << 20);
    const digest = upstream.serve(blob, { kind: 'corrupt', at: 1000 });
    const res = await fetchBlob(`${wharf.url}/v2/library/bigforged/blobs/${digest}`, { headers: { range: 'bytes=0-4095' } });
    expect(res.headers['x-wharf-cache']).toBe('bypass');
    expect(res.status).not.toBe(206);
    expect(res.complete).toBe(false);
  });

  it('cuts a pass-through body slower than the floor within about one window', async () => {
    const blob = randomBytes(2 << 20);
    const digest = upstream.serve(blob, SLOW_DRIP);
    const res = await fetchBlob(`${wharf.url}/v2/library/bigdrip/blobs/${digest}`, { deadlineMs: 4000 });
    expect(res.headers['x-wharf-cache']).toBe('bypass');
    expect(res.timedOut).toBe(false);
    expect(res.complete).toBe(false);
    expect(res.doneMs).toBeLessThan(WINDOW_MS * 3);
    expect(await metricValue(wharf.url, 'wharf_upstream_failures_total', { upstream: 'docker.io', reason: 'slow-body' })).toBe(1);
  });
});

describe('cache.verifiedRangesOnly: true with threads: 2', () => {
  let upstream: BlobUpstream;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startBlobUpstream();
    wharf = await startWharf({ threads: 2, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], timeouts: TIMEOUTS, cache: { verifiedRangesOnly: true } });
  });

  afterAll(async () => {
    await upstream?.stop();
    await wharf?.stop();
  });

  it('answers Ranges of uncached blobs from verified bytes on whichever thread takes them, and cached ones on both', async () => {
    const stall = { kind: 'stall', afterBytes: 64 << 10, pauseMs: 300 } as const;
    // Each request on its own connection: the kernel spreads them over both threads.
    for (let i = 0; i < 4; i++) {
      const blob = randomBytes(256 << 10);
      const forged = upstream.serve(blob, { kind: 'corrupt', at: 50, then: stall });
      const bad = await fetchBlob(`${wharf.url}/v2/library/t${i}/blobs/${forged}`, { headers: { range: 'bytes=0-99' } });
      expect(bad.status).toBe(502);

      const honest = randomBytes(256 << 10);
      const digest = upstream.serve(honest, stall);
      const url = `${wharf.url}/v2/library/t${i}/blobs/${digest}`;
      const good = await fetchBlob(url, { headers: { range: 'bytes=0-99' } });
      expect(good.status).toBe(206);
      expect(good.body.equals(honest.subarray(0, 100))).toBe(true);
      expect(good.headersMs).toBeGreaterThanOrEqual(250);
      for (let j = 0; j < 4; j++) {
        const hit = await fetchBlob(url, { headers: { range: 'bytes=100-199' } });
        expect(hit.status).toBe(206);
        expect(hit.headers['x-wharf-cache']).toBe('hit');
        expect(hit.body.equals(honest.subarray(100, 200))).toBe(true);
      }
    }
  });
});
