// The S3 blob store's own promises, beyond the shared contract: multipart uploads of blobs larger
// than a part (followed while they land), what goes on the wire to publish (If-None-Match), and
// the paths no server shows on demand, through a fault-injecting proxy in front of it: a 412 on
// publish, a failing S3, a hung body. The server is radosgw (test/support/s3-server.ts), so what
// it does for real is asserted for real: a conditional PUT of a present key gets its 412, an
// abort removes the upload. It ignores If-None-Match on CompleteMultipartUpload, so the 412 on a
// multipart publish comes from the proxy only.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DigestMismatchError, readChunks, type BlobStore, type BlobWriter } from '../../src/cache/blob-store.ts';
import { createS3BlobStore } from '../../src/cache/s3-blob-store.ts';
import { createS3Client } from '../../src/cache/s3-client.ts';
import { S3BlobStoreError } from '../../src/cache/s3-errors.ts';
import { sendfileFileSender, streamFileSender, type FileSender } from '../../src/http/file-sender.ts';
import { loadSendfileAddon } from '../../src/http/sendfile-addon.ts';
import { BlobFill, runFill } from '../../src/proxy/blob-fill.ts';
import { startS3FaultProxy, type S3FaultProxy } from '../support/s3-fault-proxy.ts';
import { startS3Server, type S3Server } from '../support/s3-server.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

const PART = 5 * 1024 * 1024;

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

async function writeAll(writer: BlobWriter, bytes: Buffer, chunk = 256 * 1024): Promise<void> {
  for (let at = 0; at < bytes.length; at += chunk) await writer.write(bytes.subarray(at, at + chunk));
}

let s3: S3Server;
/** Straight to the server, past the proxy: to look at what really happened there. */
let direct: S3Client;
beforeAll(async () => {
  s3 = await startS3Server({ server: 'radosgw' });
  direct = createS3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}, 90_000);
afterAll(async () => {
  direct?.destroy();
  await s3?.stop();
});

/** Multipart uploads the server still holds under a key prefix (an abort must remove them). */
async function openUploads(under: string): Promise<string[]> {
  const out = await direct.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: under }));
  return (out.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
}

describe('S3BlobStore', () => {
  let proxy: S3FaultProxy;
  let spool: TempDir;
  let client: S3Client;
  let store: BlobStore;
  let prefix = 0;
  let storePrefix = '';

  beforeEach(async () => {
    proxy = await startS3FaultProxy(s3.endpoint);
    spool = await makeTempDir('wharf-s3-spool-');
    client = createS3Client({
      endpoint: proxy.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    storePrefix = `p${++prefix}/`;
    store = createS3BlobStore({ client, bucket: s3.bucket, prefix: storePrefix, spoolDir: spool.path, partSize: PART, requestTimeoutMs: 5000 });
  });

  afterEach(async () => {
    client.destroy();
    await proxy.stop();
    await spool.cleanup();
  });

  const listed = async () => {
    const all = [];
    for await (const b of store.list()) all.push(b.digest);
    return all;
  };

  it('uploads a blob larger than a part in parts, completes it with If-None-Match: *, and a follower reads it as it lands', async () => {
    const bytes = randomBytes(2 * PART + 12345);
    const digest = sha256(bytes);
    const writer = await store.createWriter(digest);
    const follower = await writer.openReader();
    const seen = Buffer.alloc(bytes.length);
    let readTo = 0;
    for (let at = 0; at < bytes.length; at += 1 << 20) {
      await writer.write(bytes.subarray(at, at + (1 << 20)));
      while (readTo < writer.written) readTo += await follower.read(seen, readTo, writer.written - readTo, readTo);
    }
    expect(seen.equals(bytes)).toBe(true);
    await follower.close();
    // Nothing is visible before the commit, though parts went out.
    expect(await store.stat(digest)).toBeUndefined();
    const info = await writer.commit();
    expect(info.size).toBe(bytes.length);

    const parts = proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('partNumber='));
    expect(parts.length).toBe(3);
    const publishes = proxy.requests.filter((r) => r.publish);
    expect(publishes.map((r) => [r.method, r.ifNoneMatch])).toEqual([['POST', '*']]);

    const reader = (await (await store.stat(digest))!.open())!;
    const back: Buffer[] = [];
    for await (const c of readChunks(reader, bytes.length)) back.push(Buffer.from(c));
    await reader.close();
    expect(Buffer.concat(back).equals(bytes)).toBe(true);
  });

  it('publishes a small blob with one PUT carrying If-None-Match: *', async () => {
    const bytes = randomBytes(70_000);
    const writer = await store.createWriter(sha256(bytes));
    await writeAll(writer, bytes);
    await writer.commit();
    const publishes = proxy.requests.filter((r) => r.publish);
    expect(publishes.map((r) => [r.method, r.ifNoneMatch])).toEqual([['PUT', '*']]);
    expect(proxy.requests.some((r) => r.path.includes('uploads'))).toBe(false);
  });

  it('never completes an upload whose bytes do not match: the parts are aborted and nothing is listed', async () => {
    const bytes = randomBytes(2 * PART + 1);
    const expected = sha256(Buffer.from('something else'));
    const writer = await store.createWriter(expected);
    await writeAll(writer, bytes);
    await expect(writer.commit()).rejects.toBeInstanceOf(DigestMismatchError);
    expect(proxy.requests.some((r) => r.method === 'PUT' && r.path.includes('partNumber='))).toBe(true);
    expect(proxy.requests.filter((r) => r.publish)).toEqual([]);
    // AbortMultipartUpload went out, and radosgw really removed the upload with its parts.
    expect(proxy.requests.some((r) => r.method === 'DELETE' && r.path.includes('uploadId='))).toBe(true);
    expect(await openUploads(storePrefix)).toEqual([]);
    expect(await store.stat(expected)).toBeUndefined();
    expect(await listed()).toEqual([]);
  });

  it('aborting a writer mid-upload publishes nothing', async () => {
    const bytes = randomBytes(PART + 100);
    const writer = await store.createWriter(sha256(bytes));
    await writeAll(writer, bytes);
    await writer.abort();
    expect(proxy.requests.filter((r) => r.publish)).toEqual([]);
    // Any multipart upload it had begun is gone from the server, not just left uncompleted.
    const began = proxy.requests.some((r) => r.method === 'POST' && r.path.includes('uploads'));
    if (began) expect(proxy.requests.some((r) => r.method === 'DELETE' && r.path.includes('uploadId='))).toBe(true);
    expect(await openUploads(storePrefix)).toEqual([]);
    expect(await store.stat(sha256(bytes))).toBeUndefined();
    expect(await store.removeTempFiles()).toBe(0);
  });

  it('publishing a digest already there gets a real 412 from the server, taken as success, and the object stays as it was', async () => {
    const bytes = randomBytes(70_000);
    const digest = sha256(bytes);
    const first = await store.createWriter(digest);
    await writeAll(first, bytes);
    await first.commit();
    const key = proxy.requests.find((r) => r.publish)!.path.split('?')[0]!.replace(`/${s3.bucket}/`, '');
    const before = await direct.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: decodeURIComponent(key) }));
    // The server refuses a conditional PUT of the present key, as wharf's publish relies on.
    await expect(direct.send(new PutObjectCommand({ Bucket: s3.bucket, Key: decodeURIComponent(key), Body: Buffer.from('other bytes'), IfNoneMatch: '*' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 412 },
    });
    // Past a second, so an overwrite would show in Last-Modified.
    await new Promise((r) => setTimeout(r, 1100));
    proxy.requests.length = 0;
    const second = await store.createWriter(digest);
    await writeAll(second, bytes);
    const info = await second.commit();
    expect(info.size).toBe(bytes.length);
    expect(proxy.requests.filter((r) => r.publish).map((r) => [r.method, r.ifNoneMatch])).toEqual([['PUT', '*']]);
    const after = await direct.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: decodeURIComponent(key) }));
    expect(after.LastModified?.getTime()).toBe(before.LastModified?.getTime());
    expect(after.ContentLength).toBe(bytes.length);
    const reader = (await info.open())!;
    const back: Buffer[] = [];
    for await (const c of readChunks(reader, bytes.length)) back.push(Buffer.from(c));
    await reader.close();
    expect(Buffer.concat(back).equals(bytes)).toBe(true);
  });

  it('takes a 412 on publish (another replica published it first) as success', async () => {
    for (const size of [1000, PART + 1]) {
      proxy.failPublishWith = { status: 412, code: 'PreconditionFailed' };
      const bytes = randomBytes(size);
      const writer = await store.createWriter(sha256(bytes));
      await writeAll(writer, bytes);
      const info = await writer.commit();
      expect(info.size).toBe(size);
      expect(proxy.requests.filter((r) => r.publish).length).toBeGreaterThan(0);
    }
  });

  it('fails the commit when the publish fails for real, leaving nothing visible', async () => {
    proxy.failPublishWith = { status: 409, code: 'ConditionalRequestConflict' };
    const bytes = randomBytes(5000);
    const writer = await store.createWriter(sha256(bytes));
    await writer.write(bytes);
    // A 409 with no object behind it is not a success.
    await expect(writer.commit()).rejects.toBeInstanceOf(S3BlobStoreError);
    proxy.failPublishWith = { status: 500, code: 'InternalError' };
    const other = await store.createWriter(sha256(bytes));
    await other.write(bytes);
    await expect(other.commit()).rejects.toBeInstanceOf(S3BlobStoreError);
    proxy.failPublishWith = undefined;
    expect(await store.stat(sha256(bytes))).toBeUndefined();
    expect(await store.removeTempFiles()).toBe(0);
  });

  it('fails writes once the upload has failed, and says S3 is away in stat and ping', async () => {
    proxy.failAllWith = { status: 403, code: 'AccessDenied' };
    const bytes = randomBytes(3 * PART);
    const writer = await store.createWriter(sha256(bytes));
    await expect(writeAll(writer, bytes)).rejects.toBeInstanceOf(S3BlobStoreError);
    await writer.abort();
    await expect(store.stat(sha256(bytes))).rejects.toBeInstanceOf(S3BlobStoreError);
    await expect(store.ping()).rejects.toBeInstanceOf(S3BlobStoreError);
    proxy.failAllWith = undefined;
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('reads any range of a committed blob, out of order, without suffix ranges', async () => {
    const bytes = randomBytes(3 * 1024 * 1024);
    const writer = await store.createWriter(sha256(bytes));
    await writeAll(writer, bytes);
    const info = await writer.commit();
    const reader = (await info.open())!;
    try {
      for (const [position, length] of [[2_500_000, 100_000], [10, 20], [10, 20], [1_000_000, 5], [1_000_100, 7], [bytes.length - 50, 50]] as const) {
        const buf = Buffer.alloc(length);
        expect(await reader.read(buf, 0, length, position)).toBe(length);
        expect(buf.equals(bytes.subarray(position, position + length))).toBe(true);
      }
      expect(await reader.read(Buffer.alloc(10), 0, 10, bytes.length)).toBe(0);
      const short = Buffer.alloc(100);
      expect(await reader.read(short, 0, 100, bytes.length - 30)).toBe(30);
    } finally {
      await reader.close();
    }
    const gets = proxy.requests.filter((r) => r.method === 'GET' && !r.path.includes('list-type'));
    expect(gets.length).toBeGreaterThan(1);
  });

  it('uploads the bytes that were hashed, even when the caller reuses its buffer after a write', async () => {
    const bytes = randomBytes(PART + 4096);
    const digest = sha256(bytes);
    const writer = await store.createWriter(digest);
    const scratch = Buffer.alloc(64 * 1024);
    for (let at = 0; at < bytes.length; at += scratch.length) {
      const n = bytes.copy(scratch, 0, at, at + scratch.length);
      await writer.write(scratch.subarray(0, n));
      scratch.fill(0); // as a caller reading into one buffer would, before the upload took the bytes
    }
    const info = await writer.commit();
    const reader = (await info.open())!;
    const back: Buffer[] = [];
    for await (const c of readChunks(reader, info.size)) back.push(Buffer.from(c));
    await reader.close();
    expect(sha256(Buffer.concat(back))).toBe(digest);
  });

  it('is sent by both file senders: without a descriptor, the sendfile sender streams', async () => {
    const addon = loadSendfileAddon();
    if (addon instanceof Error) throw new Error(`the sendfile addon does not load (npm run build:native): ${addon.message}`);
    const bytes = randomBytes(3 * 1024 * 1024 + 7);
    const writer = await store.createWriter(sha256(bytes));
    await writeAll(writer, bytes);
    const info = await writer.commit();
    for (const sender of [sendfileFileSender(addon), streamFileSender()] as FileSender[]) {
      const server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://x');
        const range = { start: Number(url.searchParams.get('start')), end: Number(url.searchParams.get('end')) };
        res.writeHead(200, { 'Content-Length': String(range.end - range.start + 1) });
        void sender.send(res, info, range);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address() as AddressInfo;
        for (const [start, end] of [[0, bytes.length - 1], [1_500_000, 2_600_000]] as const) {
          const answer = await request(`http://127.0.0.1:${port}/?start=${start}&end=${end}`);
          const body = Buffer.from(await answer.body.arrayBuffer());
          expect(body.equals(bytes.subarray(start, end + 1)), `${sender.method} ${start}-${end}`).toBe(true);
        }
      } finally {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    }
  });

  it('gives up on a GET whose body stops coming, within the request deadline', async () => {
    const quick = createS3BlobStore({ client, bucket: s3.bucket, prefix: `p${++prefix}/`, spoolDir: spool.path, partSize: PART, requestTimeoutMs: 300 });
    const bytes = randomBytes(1024 * 1024);
    const writer = await quick.createWriter(sha256(bytes));
    await writeAll(writer, bytes);
    const info = await writer.commit();
    proxy.stallGetsAfter = 1000;
    const reader = (await info.open())!;
    try {
      const buf = Buffer.alloc(bytes.length);
      const started = Date.now();
      await expect(reader.read(buf, 0, buf.length, 0)).rejects.toBeInstanceOf(S3BlobStoreError);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(buf.subarray(0, 1000).equals(bytes.subarray(0, 1000))).toBe(true);
    } finally {
      await reader.close();
    }
  });

  it('serves followers of a fill from its spool while the upload runs, through both senders', async () => {
    const addon = loadSendfileAddon();
    if (addon instanceof Error) throw new Error(`the sendfile addon does not load (npm run build:native): ${addon.message}`);
    const bytes = randomBytes(PART + 2 * 1024 * 1024);
    const digest = sha256(bytes);
    const writer = await store.createWriter(digest);
    const fill = new BlobFill(digest, bytes.length, () => writer.openReader());
    async function* upstream(): AsyncIterable<Uint8Array> {
      for (let at = 0; at < bytes.length; at += 64 * 1024) {
        if (at % (1 << 20) === 0) await new Promise((r) => setTimeout(r, 5));
        yield bytes.subarray(at, at + 64 * 1024);
      }
    }
    const senders: FileSender[] = [sendfileFileSender(addon), streamFileSender()];
    const server = createServer((req, res) => {
      const sender = senders[Number(new URL(req.url ?? '/', 'http://x').searchParams.get('sender'))]!;
      res.writeHead(200, { 'Content-Length': String(bytes.length) });
      res.flushHeaders();
      void sender.sendFill(res, fill, { start: 0, end: undefined });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const filling = runFill(fill, writer, upstream());
      const bodies = await Promise.all([0, 1, 0, 1].map(async (i) => Buffer.from(await (await request(`http://127.0.0.1:${port}/?sender=${i}`)).body.arrayBuffer())));
      await filling;
      expect(fill.state).toBe('complete');
      for (const body of bodies) expect(body.equals(bytes)).toBe(true);
      expect((await store.stat(digest))?.size).toBe(bytes.length);
      expect(await store.removeTempFiles()).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('closing a reader ends a read that waits on a stalled body at once, not at the deadline', async () => {
    const bytes = randomBytes(1024 * 1024);
    const writer = await store.createWriter(sha256(bytes));
    await writeAll(writer, bytes);
    const info = await writer.commit();
    proxy.stallGetsAfter = 1000;
    const reader = (await info.open())!;
    const started = Date.now();
    const pending = reader.read(Buffer.alloc(bytes.length), 0, bytes.length, 0).then(
      (n) => n,
      (err: unknown) => err,
    );
    await new Promise((r) => setTimeout(r, 100));
    await reader.close();
    const outcome = await pending;
    // The store's deadline is 5 s: both must be over well before it.
    expect(Date.now() - started).toBeLessThan(2000);
    expect(outcome === 1000 || outcome instanceof S3BlobStoreError).toBe(true);
  });
});
