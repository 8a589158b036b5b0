// Blob GETs over plain HTTP go on wharf's own connections (plain-exchange.ts), everything else
// through undici. Against real servers on loopback: the same hostile answers given to both paths
// come out the same (the bytes, or a failure); bodies arrive whole through the fill's batches,
// also several at once through the one shared read buffer; connections are kept and reused, a
// stale one retried; deadlines, holding back, aborts and header injection.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamClient } from '../../src/proxy/upstream-client.ts';
import { bodyBatches, type BatchHooks } from '../../src/proxy/body-batches.ts';
import type { PlainBody } from '../../src/proxy/plain-body.ts';
import { startRawHttpServer, type RawHttpServer, type RawReply } from '../support/raw-http-server.ts';
import { pseudoRandomBytes, sha256 } from '../support/test-images.ts';

const clients: UpstreamClient[] = [];
const stops: Array<() => Promise<unknown>> = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(stops.splice(0).map((stop) => stop()));
});

function client(url: string, t: { headersMs?: number; bodyIdleMs?: number } = {}): UpstreamClient {
  const c = new UpstreamClient({
    upstream: { name: 'test.io', url, redirectHosts: [], authRealmHosts: [] },
    timeouts: { connectMs: 1000, headersMs: t.headersMs ?? 2000, bodyIdleMs: t.bodyIdleMs ?? 2000, manifestTotalMs: 5000, blobMinBytesPerSecond: 0, blobRateWindowMs: 10000 },
  });
  clients.push(c);
  return c;
}

async function raw(reply: RawReply): Promise<RawHttpServer> {
  const server = await startRawHttpServer(() => reply);
  stops.push(() => server.stop());
  return server;
}

async function listen(server: Server | ReturnType<typeof createNetServer>): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** What one GET of path yields: the status and the body's text, or the failure. */
async function outcome(c: UpstreamClient, path: string): Promise<string> {
  try {
    const res = await c.request({ method: 'GET', path });
    return `${res.statusCode} ${await res.body.text()}`;
  } catch (err) {
    return 'failed';
  }
}

/** The body's bytes as a fill reads them: batches, each copied and released before the next is asked for. */
async function viaBatches(c: UpstreamClient, path: string): Promise<Buffer> {
  const res = await c.request({ method: 'GET', path });
  const parts: Buffer[] = [];
  for await (const batch of bodyBatches(res.body, 4 << 20)) {
    parts.push(Buffer.from(batch.bytes));
    batch.release();
  }
  return Buffer.concat(parts);
}

const head = (lines: string[]) => `HTTP/1.1 200 OK\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;

describe('hostile answers: the plain path decides as undici does', () => {
  const cases: Array<[string, string]> = [
    ['Content-Length', `${head(['Content-Length: 5'])}hello`],
    ['chunked, with an extension and a trailer', `${head(['Transfer-Encoding: chunked'])}3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nX-T: 1\r\n\r\n`],
    ['ended by the close', `${head([])}hello`],
    ['an interim 100 to a GET that asked none', `HTTP/1.1 100 Continue\r\n\r\n${head(['Content-Length: 5'])}hello`],
    ['the same Content-Length twice', `${head(['Content-Length: 5', 'Content-Length: 5'])}hello`],
    ['shorter than its Content-Length', `${head(['Content-Length: 10'])}hello`],
    ['two different Content-Lengths', `${head(['Content-Length: 5', 'Content-Length: 6'])}hello`],
    ['a signed Content-Length', `${head(['Content-Length: +5'])}hello`],
    ['Content-Length and chunked', `${head(['Content-Length: 5', 'Transfer-Encoding: chunked'])}5\r\nhello\r\n0\r\n\r\n`],
    ['a bad chunk size', `${head(['Transfer-Encoding: chunked'])}zz\r\nhello\r\n0\r\n\r\n`],
    ['a chunk longer than its size', `${head(['Transfer-Encoding: chunked'])}3\r\nhello\r\n0\r\n\r\n`],
    ['chunked, cut before the last chunk', `${head(['Transfer-Encoding: chunked'])}5\r\nhello\r\n`],
    ['a garbage status line', 'HTTP/9 OK\r\nContent-Length: 5\r\n\r\nhello'],
    ['a header line without a colon', `HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\nhello`],
    ['a header name with a space', `HTTP/1.1 200 OK\r\nContent Length: 5\r\n\r\nhello`],
    ['a NUL in a header value', `HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 5\r\n\r\nhello`],
    ['a head past 16 KiB', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 << 10)}\r\nContent-Length: 5\r\n\r\nhello`],
    ['a gzip transfer coding (to the close)', `${head(['Transfer-Encoding: gzip'])}hello`],
  ];

  it.each(cases)('%s', async (_, reply) => {
    const server = await raw({ parts: [Buffer.from(reply, 'latin1')] });
    const c = client(server.url);
    const viaUndici = await outcome(c, '/v2/x/manifests/a');
    const viaPlain = await outcome(c, '/v2/x/blobs/sha256:a');
    expect(viaPlain).toBe(viaUndici);
  });
});

describe('a head and a chunked body arriving a few bytes at a time', () => {
  it('is read whole, every line and chunk split across reads', async () => {
    const text = `${head(['Transfer-Encoding: chunked'])}5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n`;
    const parts: Array<Buffer | { waitMs: number }> = [];
    for (let i = 0; i < text.length; i += 3) parts.push(Buffer.from(text.slice(i, i + 3), 'latin1'), { waitMs: 2 });
    const server = await raw({ parts });
    expect(await outcome(client(server.url), '/v2/x/blobs/sha256:a')).toBe('200 hello world');
  });
});

describe('bodies through the fill batches', () => {
  it('arrive whole, four at once through one read buffer, written in odd pieces', async () => {
    const bodies = [0, 1, 2, 3].map((i) => pseudoRandomBytes(`plain-${i}`, (3 << 20) + i * 1234));
    const url = await listen(
      createServer((req, res) => {
        const body = bodies[Number(/blobs\/sha256:(\d)/.exec(req.url ?? '')?.[1])]!;
        res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
        let at = 0;
        const drip = () => {
          while (at < body.length) {
            const n = Math.min(body.length - at, 7777 + (at % 50_000));
            const more = res.write(body.subarray(at, at + n));
            at += n;
            if (!more) return res.once('drain', drip);
          }
          res.end();
        };
        drip();
      }),
    );
    const c = client(url);
    const got = await Promise.all(bodies.map((_, i) => viaBatches(c, `/v2/x/blobs/sha256:${i}`)));
    expect(got.map(sha256)).toEqual(bodies.map(sha256));
  });

  it('land in the memory an attached sink offers, so a fill copies nothing', async () => {
    const body = pseudoRandomBytes('plain-in-place', 8 << 20);
    const url = await listen(createServer((req, res) => res.writeHead(200, { 'content-length': body.length }).end(body)));
    const res = await client(url).request({ method: 'GET', path: '/v2/x/blobs/sha256:0' });
    const target = Buffer.alloc(body.length);
    let filled = 0;
    let inPlace = 0;
    let copied = 0;
    await new Promise<void>((resolve, reject) => {
      (res.body as unknown as PlainBody).attach({
        readRegion: () => target.subarray(filled, Math.min(filled + (256 << 10), target.length)),
        push: (bytes) => {
          if (bytes.buffer === target.buffer && bytes.byteOffset === target.byteOffset + filled) inPlace++;
          else {
            target.set(bytes, filled);
            copied++;
          }
          filled += bytes.byteLength;
        },
        end: resolve,
        fail: reject,
      });
    });
    expect(sha256(target)).toBe(sha256(body));
    // Copied: the bytes that came with the head, and the first read after them, which lands where
    // the read before it (the head's) said; every later read asks the sink.
    expect(copied).toBeLessThanOrEqual(2);
    expect(inPlace).toBeGreaterThan(8);
  });

  /** A body served whole, read as a fill's batches, each used across a wait (as a writer would) while the socket goes on reading. */
  async function readSlowly(seed: string, size: number, maxBytes: number, hooks: BatchHooks = {}) {
    const body = pseudoRandomBytes(seed, size);
    const url = await listen(createServer((req, res) => res.writeHead(200, { 'content-length': body.length }).end(body)));
    const res = await client(url).request({ method: 'GET', path: '/v2/x/blobs/sha256:0' });
    const hash = createHash('sha256');
    let batches = 0;
    for await (const batch of bodyBatches(res.body, maxBytes, hooks)) {
      await sleep(2);
      hash.update(batch.bytes);
      batch.release();
      batches++;
    }
    return { body, digest: `sha256:${hash.digest('hex')}`, batches };
  }

  it('arrive whole when each batch is read slowly, reads landing in place while the last batch is written', async () => {
    const { body, digest, batches } = await readSlowly('plain-slow-reader', 12 << 20, 1 << 20);
    expect(digest).toBe(sha256(body));
    expect(batches).toBeGreaterThan(4);
  });

  it('lend the read that lands past a batch just lent where it lies: a body never held back is copied only at its start', async () => {
    let copied = 0;
    // maxBytes far above the body: never held back, so every read is offered staging memory.
    const { body, digest, batches } = await readSlowly('plain-landed', 24 << 20, 64 << 20, { copied: (n) => (copied += n) });
    expect(digest).toBe(sha256(body));
    expect(batches).toBeGreaterThan(4);
    // Copied: what came with the head and the read after it (as for a sink, above). The first
    // read after each take, which lands in the buffer just lent, is lent where it lies.
    expect(copied).toBeLessThanOrEqual(2 << 20);
  });

  it('reuses a kept-alive connection, and asks again on a fresh one when the kept one was closed unanswered', async () => {
    let connections = 0;
    let requests = 0;
    const body = Buffer.from('blob bytes');
    const url = await listen(
      createNetServer((socket: Socket) => {
        connections++;
        let served = 0;
        socket.on('data', (chunk) => {
          for (let i = chunk.indexOf('\r\n\r\n'); i !== -1; i = chunk.indexOf('\r\n\r\n', i + 4)) {
            requests++;
            // The fourth request on the first connection: closed, as a server ending an idle one.
            if (connections === 1 && served === 3) return socket.destroy();
            served++;
            socket.write(Buffer.concat([Buffer.from(head([`Content-Length: ${body.length}`])), body]));
          }
        });
      }),
    );
    const c = client(url);
    for (let i = 0; i < 3; i++) expect((await viaBatches(c, '/v2/x/blobs/sha256:a')).toString()).toBe('blob bytes');
    expect(connections).toBe(1);
    expect((await viaBatches(c, '/v2/x/blobs/sha256:a')).toString()).toBe('blob bytes');
    expect({ connections, requests }).toEqual({ connections: 2, requests: 5 });
  });
});

describe('deadlines, holding back, aborts, injection', () => {
  it('gives up a head that does not come within headersMs', async () => {
    const server = await raw({ parts: [{ waitMs: 1500 }, Buffer.from(`${head(['Content-Length: 1'])}x`)] });
    const started = Date.now();
    await expect(client(server.url, { headersMs: 200 }).request({ method: 'GET', path: '/v2/x/blobs/sha256:a' })).rejects.toMatchObject({ kind: 'headers-timeout' });
    expect(Date.now() - started).toBeLessThan(1200);
  });

  it('cuts a body silent for bodyIdleMs, but not while its reader holds it back', async () => {
    const silent = await raw({ parts: [Buffer.from(`${head(['Content-Length: 10'])}hello`), { waitMs: 1500 }, Buffer.from('world')] });
    const res = await client(silent.url, { bodyIdleMs: 200 }).request({ method: 'GET', path: '/v2/x/blobs/sha256:a' });
    await expect(res.body.text()).rejects.toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' });

    const body = pseudoRandomBytes('held', 6 << 20);
    const all = await raw({ parts: [Buffer.concat([Buffer.from(head([`Content-Length: ${body.length}`])), body])] });
    const held = await client(all.url, { bodyIdleMs: 200 }).request({ method: 'GET', path: '/v2/x/blobs/sha256:a' });
    const parts: Buffer[] = [];
    for await (const chunk of held.body) {
      parts.push(Buffer.from(chunk as Buffer));
      if (parts.length === 1) await sleep(600); // three idle deadlines, with the socket held
    }
    expect(sha256(Buffer.concat(parts))).toBe(sha256(body));
  });

  it('fails a body whose request is aborted mid-way', async () => {
    const server = await raw({ parts: [Buffer.from(`${head(['Content-Length: 10'])}hello`), { waitMs: 1000 }, Buffer.from('world')] });
    const abort = new AbortController();
    const res = await client(server.url).request({ method: 'GET', path: '/v2/x/blobs/sha256:a', signal: abort.signal });
    setTimeout(() => abort.abort(), 100);
    await expect(res.body.text()).rejects.toThrow();
  });

  it('sends nothing when a header would split the request', async () => {
    const server = await raw({ parts: [Buffer.from(`${head(['Content-Length: 1'])}x`)] });
    await expect(client(server.url).request({ method: 'GET', path: '/v2/x/blobs/sha256:a', headers: { 'x-a': 'a\r\nx-injected: 1' } })).rejects.toThrow();
    await sleep(100);
    expect(server.requests).toEqual([]);
  });
});
