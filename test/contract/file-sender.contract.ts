// The FileSender contract: how a cached blob file reaches a client. Both ways (the kernel's
// sendfile, Node streams) run it against a real HTTP server on loopback and real sockets.
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { readdir, readlink, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileSender } from '../../src/http/file-sender.ts';
import type { ByteRange } from '../../src/oci/range.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

interface Served {
  readonly res: ServerResponse;
  readonly socket: Socket | null;
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
        const file = url.pathname.slice(1);
        const size = Number(url.searchParams.get('size') ?? (file === 'large' ? large.length : small.length));
        const range: ByteRange = { start: Number(url.searchParams.get('start') ?? 0), end: Number(url.searchParams.get('end') ?? size - 1) };
        res.writeHead(200, { 'Content-Length': String(Math.max(0, range.end - range.start + 1)) });
        const socket = res.socket;
        served.push({ res, socket, bytesBefore: socket?.bytesWritten ?? 0, done: sender.send(res, join(dir.path, file), range) });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await dir.cleanup();
    });

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
  });
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
