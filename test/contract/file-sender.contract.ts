// The FileSender contract: how a cached blob file reaches a client. Both ways (the kernel's
// sendfile, Node streams) run it against a real HTTP server on loopback and real sockets.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { readdir, readlink, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileSender } from '../../src/http/file-sender.ts';
import { createDiskBlobStore, openFileReader } from '../../src/cache/disk-blob-store.ts';
import type { BlobInfo } from '../../src/cache/blob-store.ts';
import { BlobFill, runFill } from '../../src/proxy/blob-fill.ts';
import type { ByteRange } from '../../src/oci/range.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

interface Served {
  readonly res: ServerResponse;
  readonly socket: Socket;
  readonly done: Promise<void>;
  readonly bytesBefore: number;
}

export function fileSenderContract(name: string, makeSender: () => FileSender): void {
  describe(`FileSender contract: ${name}`, () => {
    let dir: TempDir;
    let sender: FileSender;
    let server: Server;
    let base: string;
    let small: Buffer;
    let large: Buffer;
    const served: Served[] = [];
    const fills = new Map<string, BlobFill>();

    beforeAll(async () => {
      sender = makeSender();
      dir = await makeTempDir('wharf-file-sender-');
      small = randomBytes(3 * 1024 * 1024 + 17);
      large = randomBytes(48 * 1024 * 1024 + 5);
      await writeFile(join(dir.path, 'small'), small);
      await writeFile(join(dir.path, 'large'), large);
      // GET /<file>?start=&end= answers that range of the file with its Content-Length.
      server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://x');
        const fill = fills.get(url.pathname.slice(1));
        if (fill) {
          // GET /<fill>?start=&end=: as the blob route answers a blob still being filled.
          const start = Number(url.searchParams.get('start') ?? 0);
          const end = url.searchParams.has('end') ? Number(url.searchParams.get('end')) : undefined;
          res.writeHead(200, { 'Content-Length': String((end ?? fill.size! - 1) - start + 1) });
          res.flushHeaders();
          const socket = req.socket; // res.socket is null while a pipelined request waits its turn
          served.push({ res, socket, bytesBefore: socket?.bytesWritten ?? 0, done: sender.sendFill(res, fill, { start, end }) });
          return;
        }
        const file = url.pathname.slice(1);
        const size = Number(url.searchParams.get('size') ?? (file === 'large' ? large.length : small.length));
        const range: ByteRange = { start: Number(url.searchParams.get('start') ?? 0), end: Number(url.searchParams.get('end') ?? size - 1) };
        res.writeHead(200, { 'Content-Length': String(Math.max(0, range.end - range.start + 1)) });
        const socket = req.socket; // res.socket is null while a pipelined request waits its turn
        served.push({ res, socket, bytesBefore: socket?.bytesWritten ?? 0, done: sender.send(res, fileBlob(join(dir.path, file), size), range) });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await dir.cleanup();
    });

    /** A real fill on the disk blob store, fed in 64 KiB chunks with pauses; failAt cuts its body. */
    async function startFill(name: string, bytes: Buffer, opts: { pauseMs: number; failAt?: number }): Promise<{ fill: BlobFill; done: Promise<void> }> {
      const store = createDiskBlobStore(join(dir.path, `store-${name}`), { fsync: false });
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      const writer = await store.createWriter(digest);
      const fill = new BlobFill(digest, bytes.length, () => writer.openReader());
      fills.set(name, fill);
      async function* body(): AsyncIterable<Uint8Array> {
        for (let i = 0; i < bytes.length; i += 64 << 10) {
          if (opts.failAt !== undefined && i >= opts.failAt) throw new Error('upstream reset');
          await sleep(opts.pauseMs);
          yield bytes.subarray(i, i + (64 << 10));
        }
      }
      return { fill, done: runFill(fill, writer, body()) };
    }

    async function get(path: string, dispatcher?: Agent): Promise<Buffer> {
      const res = await request(`${base}${path}`, { dispatcher });
      expect(res.statusCode).toBe(200);
      return Buffer.from(await res.body.arrayBuffer());
    }

    it('sends a whole file byte for byte and accounts for every byte sent', async () => {
      expectSame(await get('/large'), large);
      const last = served.at(-1)!;
      await last.done;
      const viaNode = (last.socket?.bytesWritten ?? 0) - last.bytesBefore;
      expect(viaNode + sender.bytesSentPastNode(last.res)).toBeGreaterThanOrEqual(large.length);
    });

    it('sends a range from the middle of a file', async () => {
      expectSame(await get('/small?start=1000003&end=2500000'), small.subarray(1000003, 2500001));
      expect(await get('/small?start=0&end=0')).toEqual(small.subarray(0, 1));
    });

    it('sends an empty body for an empty range', async () => {
      expect(await get('/small?start=5&end=4')).toEqual(Buffer.alloc(0));
    });

    it('keeps the connection usable for the next request', async () => {
      const agent = new Agent({ connections: 1 });
      const before = served.length;
      try {
        for (let i = 0; i < 3; i++) expectSame(await get(`/small?start=${i}`, agent), small.subarray(i));
      } finally {
        await agent.close();
      }
      const sockets = new Set(served.slice(before).map((s) => s.socket));
      expect(sockets.size).toBe(1);
    });

    it("sends an answer's last bytes at once, answer after answer on one connection", async () => {
      // A socket left corked after a transfer holds its last partial segment for 200 ms.
      const agent = new Agent({ connections: 1 });
      try {
        const started = performance.now();
        for (let i = 0; i < 20; i++) expect(await get(`/small?start=${i}&end=${1000 + i * 7}`, agent)).toEqual(small.subarray(i, 1001 + i * 7));
        expect(performance.now() - started).toBeLessThan(2000);
      } finally {
        await agent.close();
      }
    });

    it('waits for a client that stops reading, serving others meanwhile, then finishes it', async () => {
      const stalled = await rawGet(base, '/large');
      await sleep(300); // the socket buffers fill up; the sender must now wait, not spin or fail
      const started = performance.now();
      expectSame(await get('/small'), small);
      expect(performance.now() - started).toBeLessThan(2000);
      expect(stalled.received()).toBeLessThan(large.length);
      const body = await stalled.readAll();
      expectSame(body.subarray(body.indexOf('\r\n\r\n') + 4), large);
    });

    it('stops when the client goes away mid-body, closing the file, and keeps serving', async () => {
      const openBefore = await openFiles(dir.path);
      const client = await rawGet(base, '/large');
      await client.waitFor(1024 * 1024);
      const before = served.length;
      client.socket.destroy();
      await served[before - 1]!.done;
      expect(await openFiles(dir.path)).toBe(openBefore);
      expectSame(await get('/small'), small);
    });

    it('cuts the connection when the file is shorter than promised', async () => {
      const path = join(dir.path, 'short');
      await writeFile(path, small);
      await truncate(path, 1000);
      const started = performance.now();
      await expect(get(`/short?size=${small.length}`)).rejects.toThrow();
      // Not left waiting for bytes that never come until some idle timeout closes the connection.
      expect(performance.now() - started).toBeLessThan(1000);
      await served.at(-1)!.done;
      await rm(path);
    });

    it('cuts the connection when the file is gone', async () => {
      await expect(get('/missing?size=100')).rejects.toThrow();
      await served.at(-1)!.done;
      expectSame(await get('/small?start=7'), small.subarray(7));
    });

    it('follows a fill as it grows: first bytes early, every byte in the end', async () => {
      const bytes = randomBytes(4 * 1024 * 1024 + 3);
      const { done } = await startFill('growing', bytes, { pauseMs: 10 });
      const started = performance.now();
      const res = await request(`${base}/growing`);
      let firstByteMs: number | undefined;
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) {
        firstByteMs ??= performance.now() - started;
        chunks.push(chunk as Buffer);
      }
      const wallMs = performance.now() - started;
      await done;
      expectSame(Buffer.concat(chunks), bytes);
      expect(firstByteMs!).toBeLessThan(wallMs / 4);
      const last = served.at(-1)!;
      await last.done;
      expect((last.socket?.bytesWritten ?? 0) - last.bytesBefore + sender.bytesSentPastNode(last.res)).toBeGreaterThanOrEqual(bytes.length);
    });

    it('follows a range of a fill', async () => {
      const bytes = randomBytes(1024 * 1024);
      const { done } = await startFill('ranged', bytes, { pauseMs: 5 });
      expectSame(await get('/ranged?start=100000&end=900000'), bytes.subarray(100000, 900001));
      await done;
    });

    it('cuts the connection promptly when the fill fails', async () => {
      const bytes = randomBytes(2 * 1024 * 1024);
      const { fill, done } = await startFill('failing', bytes, { pauseMs: 5, failAt: 1024 * 1024 });
      const started = performance.now();
      await expect(get('/failing')).rejects.toThrow();
      await done;
      expect(fill.state).toBe('failed');
      expect(performance.now() - started).toBeLessThan(3000);
      await served.at(-1)!.done;
    });

    it('lets a client leave a fill midway, closing its file', async () => {
      const openBefore = await openFiles(dir.path);
      const bytes = randomBytes(2 * 1024 * 1024);
      const { done } = await startFill('left', bytes, { pauseMs: 5 });
      const client = await rawGet(base, '/left');
      await client.waitFor(256 * 1024);
      const mine = served.at(-1)!;
      client.socket.destroy();
      await mine.done;
      await done;
      expect(await openFiles(dir.path)).toBe(openBefore);
    });

    it('never sends a fill\'s bytes to another connection once its client left (descriptor numbers are reused)', async () => {
      const bytes = randomBytes(1024 * 1024);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const store = createDiskBlobStore(join(dir.path, 'store-gated'), { fsync: false });
      const writer = await store.createWriter(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
      const fill = new BlobFill(writer.digest, bytes.length, () => writer.openReader());
      fills.set('gated', fill);
      async function* body(): AsyncIterable<Uint8Array> {
        yield bytes.subarray(0, 64 << 10);
        await gate; // the follower now waits for more bytes
        yield bytes.subarray(64 << 10);
      }
      const filled = runFill(fill, writer, body());
      const leaving = await rawGet(base, '/gated');
      await leaving.waitFor(1024);
      const follower = served.at(-1)!;
      const closed = new Promise((resolve) => follower.socket.once('close', resolve));
      leaving.socket.destroy();
      await closed;
      // New connections take the freed descriptor numbers, on the server's side or the client's.
      const others = await Promise.all(Array.from({ length: 6 }, () => idleConnection(base)));
      release();
      await filled;
      await follower.done;
      await sleep(200);
      for (const other of others) {
        expect(other.received(), 'bytes reached an unrelated connection').toBe(0);
        other.socket.destroy();
      }
    });
  });
}

/** Any file as a blob the sender is handed (its reader opens the file; a missing file opens nothing). */
function fileBlob(path: string, size: number): BlobInfo {
  return { digest: 'sha256:test', size, open: () => openFileReader(path).catch(() => undefined) };
}

/** Byte equality without a deep comparison, which takes seconds on tens of MiB. */
function expectSame(actual: Buffer, expected: Buffer): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.equals(expected), 'bytes differ').toBe(true);
}

/** A GET over a raw socket that reads only when asked to: a client that stalls. */
async function rawGet(base: string, path: string) {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  socket.pause();
  const chunks: Buffer[] = [];
  let received = 0;
  const collect = (chunk: Buffer) => {
    chunks.push(chunk);
    received += chunk.length;
  };
  return {
    socket,
    received: () => received,
    async waitFor(bytes: number) {
      socket.on('data', collect).resume();
      while (received < bytes) await sleep(5);
      socket.pause();
    },
    readAll(): Promise<Buffer> {
      return new Promise((resolve, reject) => {
        socket.on('data', collect).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject).resume();
      });
    },
  };
}

/** A connection that sends nothing: whatever it receives was meant for someone else. */
async function idleConnection(base: string) {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.on('error', () => undefined);
  return { socket, received: () => received };
}

/** Descriptors this process holds on files under dir. */
async function openFiles(dir: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(dir)) count++;
  }
  return count;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
