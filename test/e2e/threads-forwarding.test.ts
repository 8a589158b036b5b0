// threads: 2: what a hit thread cannot answer from the cache it forwards to the main thread
// (src/threads/forward.ts). A forwarded request must get exactly the answer threads: 1 gives,
// on a connection that stays usable: HEADs (Hono wraps their answer, which once made
// @hono/node-server write the head a second time and destroy the connection), and requests with
// bodies, by Content-Length, chunked, or after Expect: 100-continue (the body was once not
// forwarded at all, so the main thread waited for it and the client got a 503).
//
// Raw sockets (node:net) so a lost pipelined answer or a closed keep-alive connection shows.
// Each connection first asks GET /v2/, which the thread that owns the connection answers itself;
// whether the main thread's own metrics counted it tells which thread that is, so every case is
// proven on the hit thread (where forwarding happens) and on the main thread.
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';

const ADMIN_TOKEN = 'forwarding-test-admin-token';
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const image = makeImage({ name: 'threads-forwarding', files: { 'f.txt': 'forwarded\n' }, extraLayerBytes: 64 << 10 });
const layer = image.layers.at(-1)!;
const NO_SUCH_BLOB = `sha256:${'0'.repeat(64)}`;
const MiB = 1 << 20;

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** One HTTP/1.1 connection, written and read by hand: pipelining and closes are visible. */
class RawConnection {
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | undefined;
  answered = 0;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on('error', () => undefined); // a server may cut an upload short: seen as a close
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Writes, waiting for the socket to drain (backpressure); false once the server closed it. */
  async write(data: string | Buffer): Promise<boolean> {
    if (this.#closed || this.#socket.destroyed) return false;
    if (this.#socket.write(data)) return true;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        resolve();
      };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
    return !this.#closed;
  }

  /** True when a complete response (head and, for anything but HEAD, body) is buffered. */
  get hasResponse(): boolean {
    return this.#parse('GET') !== undefined;
  }

  /** The next response on the connection (a 1xx interim response counts as one). */
  async response(method: string, timeoutMs = 10_000): Promise<RawResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.#parse(method);
      if (parsed) {
        this.#buffer = this.#buffer.subarray(parsed.length);
        if (parsed.response.status >= 200) this.answered++;
        return parsed.response;
      }
      if (this.#closed) throw new Error(`connection closed before the answer to ${method} (${this.answered} answered before it)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer to ${method} within ${timeoutMs} ms (${this.answered} answered before it)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Resolves true when the server closes the connection within ms, else false. */
  async closesWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.#closed && Date.now() < deadline) await sleep(10);
    return this.#closed;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #parse(method: string): { response: RawResponse; length: number } | undefined {
    const buf = this.#buffer;
    const end = buf.indexOf('\r\n\r\n');
    if (end === -1) return undefined;
    const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1]);
    if (!Number.isInteger(status)) throw new Error(`not an HTTP/1.1 status line: ${statusLine}`);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const start = end + 4;
    if (status < 200 || method === 'HEAD' || status === 204 || status === 304) return { response: { status, headers, body: Buffer.alloc(0) }, length: start };
    if (headers['transfer-encoding'] === 'chunked') {
      const chunks: Buffer[] = [];
      let at = start;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', at);
        if (lineEnd === -1) return undefined;
        const size = parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16);
        if (size === 0) {
          if (buf.length < lineEnd + 4) return undefined; // no trailers: just the final CRLF
          return { response: { status, headers, body: Buffer.concat(chunks) }, length: lineEnd + 4 };
        }
        if (buf.length < lineEnd + 2 + size + 2) return undefined;
        chunks.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    const length = Number(headers['content-length'] ?? NaN);
    if (!Number.isInteger(length)) throw new Error(`an answer without length or chunking (status ${status})`);
    if (buf.length < start + length) return undefined;
    return { response: { status, headers, body: Buffer.from(buf.subarray(start, start + length)) }, length: start + length };
  }
}

function head(method: string, path: string, headers: Record<string, string | number> = {}): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: wharf.test', `Accept: ${ACCEPT}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function chunked(parts: readonly Buffer[]): Buffer {
  return Buffer.concat([...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]), Buffer.from('0\r\n\r\n')]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const baseCount = (metricsText: string) =>
  [...metricsText.matchAll(/^wharf_requests_total\{[^}]*kind="base"[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);

type Thread = 'main' | 'hit';

/**
 * A new connection, and which thread holds it: GET /v2/ is answered by that thread itself and
 * counted in its own metrics; once every thread's count has it, the main thread's tells.
 */
async function openConnection(wharf: TestWharf): Promise<{ conn: RawConnection; thread: Thread }> {
  const mainBefore = baseCount(await wharf.deps.metrics.registry.metrics());
  const allBefore = baseCount(await wharf.deps.metrics.text());
  const conn = await RawConnection.open(wharf.port);
  await conn.write(head('GET', '/v2/'));
  const base = await conn.response('GET');
  expect(base.status).toBe(200);
  for (let i = 0; ; i++) {
    if (baseCount(await wharf.deps.metrics.text()) > allBefore) break;
    if (i === 200) throw new Error('GET /v2/ was never counted');
    await sleep(5);
  }
  const thread = baseCount(await wharf.deps.metrics.registry.metrics()) > mainBefore ? 'main' : 'hit';
  return { conn, thread };
}

/**
 * Runs a case on new connections until it ran on the hit thread `hitRuns` times and on the
 * main thread at least once; returns the outcomes by thread.
 */
async function onBothThreads<T>(wharf: TestWharf, hitRuns: number, run: (conn: RawConnection) => Promise<T>): Promise<Record<Thread, T[]>> {
  const outcomes: Record<Thread, T[]> = { main: [], hit: [] };
  for (let attempt = 0; outcomes.hit.length < hitRuns || outcomes.main.length === 0; attempt++) {
    if (attempt === 80) throw new Error(`after 80 connections: ${outcomes.hit.length} on the hit thread, ${outcomes.main.length} on the main thread`);
    const { conn, thread } = await openConnection(wharf);
    try {
      outcomes[thread].push(await run(conn));
    } finally {
      conn.destroy();
    }
  }
  return outcomes;
}

async function onOneThread<T>(wharf: TestWharf, run: (conn: RawConnection) => Promise<T>): Promise<T> {
  const { conn } = await openConnection(wharf);
  try {
    return await run(conn);
  } finally {
    conn.destroy();
  }
}

/** What must be equal between thread counts: statuses, the headers that describe content, error codes. */
function summary(method: string, r: RawResponse) {
  const errorCode = r.body.length > 0 && r.headers['content-type']?.startsWith('application/json') ? (JSON.parse(r.body.toString()) as { errors?: Array<{ code: string }> }).errors?.[0]?.code : undefined;
  return {
    method,
    status: r.status,
    length: r.headers['content-length'],
    digest: r.headers['docker-content-digest'],
    type: r.headers['content-type'],
    errorCode,
    bodyBytes: r.body.length,
  };
}

describe('forwarding from hit threads to the main thread (threads: 2)', () => {
  let upstream: UpstreamRegistry;
  let two: TestWharf;
  let one: TestWharf;
  const output: string[] = [];
  const restore: Array<() => void> = [];

  beforeAll(async () => {
    // Everything the process prints (hit threads' stdout and stderr, where @hono/node-server's
    // console.error lands, come through the parent's streams), and every log line of the main thread.
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write;
      stream.write = function (this: typeof stream, chunk: unknown, ...rest: unknown[]) {
        output.push(String(chunk));
        return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
      } as typeof stream.write;
      restore.push(() => (stream.write = write));
    }
    for (const level of ['error', 'info', 'warn'] as const) {
      const original = console[level];
      console[level] = (...args: unknown[]) => {
        output.push(args.map((a) => (a instanceof Error ? `${a.stack} ${(a as NodeJS.ErrnoException).code}` : String(a))).join(' '));
        original.apply(console, args);
      };
      restore.push(() => (console[level] = original));
    }
    const onWarning = (w: Error) => output.push(`warning: ${w.stack}`);
    process.on('warning', onWarning);
    restore.push(() => process.off('warning', onWarning));
    const logDestination = new Writable({
      write(chunk, _encoding, done) {
        output.push(String(chunk));
        done();
      },
    });

    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/fwd', 'latest', image);
    // Tags are never fresh (tagTtlSeconds 0): the hit thread forwards every request by tag.
    const options = { tagTtlSeconds: 0, adminToken: ADMIN_TOKEN, logLevel: 'warn', logDestination, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] };
    two = await startWharf({ ...options, threads: 2 });
    one = await startWharf({ ...options, threads: 1 });
  });

  const expectCleanOutput = async () => {
    await sleep(200); // hit threads' output reaches the parent's streams asynchronously
    const text = output.join('');
    expect(text).not.toMatch(/ERR_HTTP_HEADERS_SENT|Cannot write headers after they are sent|Cannot set headers/);
    expect(text).not.toMatch(/"level":(50|60)/);
  };

  afterAll(async () => {
    await two?.stop();
    await one?.stop();
    await upstream?.stop();
    for (const undo of restore.reverse()) undo();
  });

  it('answers forwarded HEADs and the requests pipelined after them, keeping the connection', async () => {
    // Nothing here but the config blob is a cache hit (uncached blobs, stale tags, errors, the
    // operator's endpoints): on the hit thread those HEADs are forwarded. The config blob, once
    // cached, is sent from disk (sendfile), then asked with HEAD, on whichever thread.
    const batch: Array<[string, string]> = [
      ['GET', `/v2/fwd/blobs/${image.config.digest}`],
      ['HEAD', `/v2/fwd/blobs/${image.config.digest}`],
      ['HEAD', '/v2/fwd/manifests/latest'],
      ['HEAD', `/v2/fwd/blobs/${layer.digest}`],
      ['HEAD', '/v2/fwd/manifests/no-such-tag'],
      ['HEAD', `/v2/fwd/blobs/${NO_SUCH_BLOB}`],
      ['HEAD', '/v2/fwd/tags/list'],
      ['HEAD', '/v2/fwd/blobs/uploads/'],
      ['HEAD', '/healthz'],
      ['GET', '/v2/fwd/manifests/latest'],
      ['GET', '/v2/'],
    ];
    const run = async (conn: RawConnection) => {
      // All pipelined in one write, then once more after a pause on the same connection.
      await conn.write(batch.map(([method, path]) => head(method, path)).join(''));
      const answers = [];
      for (const [method] of batch) answers.push(summary(method, await conn.response(method)));
      await sleep(50);
      expect(conn.closed).toBe(false);
      await conn.write(head('HEAD', `/v2/fwd/blobs/${layer.digest}`) + head('GET', '/v2/'));
      answers.push(summary('HEAD', await conn.response('HEAD')), summary('GET', await conn.response('GET')));
      return answers;
    };

    const expected = await onOneThread(one, run);
    expect(expected.map((a) => a.status)).toEqual([200, 200, 200, 200, 404, 404, 200, 405, 200, 200, 200, 200, 200]);
    expect(expected[0]!.bodyBytes).toBe(image.config.body.length);
    expect(expected[1]!.length).toBe(String(image.config.body.length));
    expect(expected[2]!.digest).toBe(image.manifest.digest);
    expect(expected[3]!.length).toBe(String(layer.body.length));
    expect(expected[9]!.bodyBytes).toBe(image.manifest.body.length);

    const outcomes = await onBothThreads(two, 12, run);
    for (const answers of [...outcomes.hit, ...outcomes.main]) expect(answers).toEqual(expected);

    // The blob was only ever asked with HEAD: nothing downloaded it, so every HEAD was a real forward.
    await upstream.settleLog();
    expect(upstream.requestLog().filter((e) => e.method === 'GET' && e.path.endsWith(layer.digest))).toHaveLength(0);
    await expectCleanOutput();
  });

  describe('requests with bodies get the answer threads: 1 gives', () => {
    const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };
    const zeros = (n: number) => Buffer.alloc(n);

    /** Sends a request with a body, then GET /v2/ pipelined after it; the answers, and whether the connection is still usable. */
    const withFollowUp = (method: string, path: string, headers: Record<string, string | number>, body: Buffer) => async (conn: RawConnection) => {
      await conn.write(Buffer.concat([Buffer.from(head(method, path, headers)), body, Buffer.from(head('GET', '/v2/'))]));
      const answers = [summary(method, await conn.response(method)), summary('GET', await conn.response('GET'))];
      await conn.write(head('GET', '/v2/'));
      answers.push(summary('GET', await conn.response('GET')));
      return answers;
    };

    /** A slow client: the answer comes while the body is still on its way; the rest of it follows, then GET /v2/. */
    const answeredMidBody = (method: string, path: string, headers: Record<string, string | number>, body: Buffer) => async (conn: RawConnection) => {
      const half = body.length >> 1;
      await conn.write(Buffer.concat([Buffer.from(head(method, path, headers)), body.subarray(0, half)]));
      const answers = [summary(method, await conn.response(method))];
      await conn.write(Buffer.concat([body.subarray(half), Buffer.from(head('GET', '/v2/'))]));
      answers.push(summary('GET', await conn.response('GET')));
      await conn.write(head('GET', '/v2/'));
      answers.push(summary('GET', await conn.response('GET')));
      return answers;
    };

    /** Expect: 100-continue: the body goes only after the interim answer. */
    const afterContinue = (method: string, path: string, headers: Record<string, string | number>, body: Buffer) => async (conn: RawConnection) => {
      await conn.write(head(method, path, { ...headers, Expect: '100-continue' }));
      const interim = await conn.response(method);
      await conn.write(Buffer.concat([body, Buffer.from(head('GET', '/v2/'))]));
      return [interim.status, summary(method, await conn.response(method)), summary('GET', await conn.response('GET'))];
    };

    const cases: Array<{ name: string; statuses: unknown[]; run: (conn: RawConnection) => Promise<unknown[]> }> = [
      {
        name: 'PUT /admin/gc with a 1 MiB body',
        statuses: [404, 200, 200],
        run: withFollowUp('PUT', '/admin/gc', { ...auth, 'Content-Length': MiB }, zeros(MiB)),
      },
      {
        name: 'POST /admin/gc?dryRun=true with a 1 MiB body',
        statuses: [200, 200, 200],
        run: withFollowUp('POST', '/admin/gc?dryRun=true', { ...auth, 'Content-Length': MiB }, zeros(MiB)),
      },
      {
        name: 'PUT /admin/gc with a 1 MiB body and no token',
        statuses: [401, 200, 200],
        run: withFollowUp('PUT', '/admin/gc', { 'Content-Length': MiB }, zeros(MiB)),
      },
      {
        name: 'POST /v2/ with a small body',
        statuses: [405, 200, 200],
        run: withFollowUp('POST', '/v2/', { 'Content-Length': 11 }, Buffer.from('hello wharf')),
      },
      {
        name: 'GET /healthz with a 1 MiB body',
        statuses: [200, 200, 200],
        run: withFollowUp('GET', '/healthz', { 'Content-Length': MiB }, zeros(MiB)),
      },
      {
        name: 'PUT /admin/gc answered before its 1 MiB body is in',
        statuses: [404, 200, 200],
        run: answeredMidBody('PUT', '/admin/gc', { ...auth, 'Content-Length': MiB }, zeros(MiB)),
      },
      {
        name: 'GET /healthz answered before its 1 MiB body is in',
        statuses: [200, 200, 200],
        run: answeredMidBody('GET', '/healthz', { 'Content-Length': MiB }, zeros(MiB)),
      },
      {
        name: 'a chunked upload POST answered before its body is in',
        statuses: [405, 200, 200],
        run: answeredMidBody('POST', '/v2/small/blobs/uploads/', { 'Transfer-Encoding': 'chunked' }, chunked([zeros(300_000), zeros(300_000)])),
      },
      {
        name: 'a chunked upload POST',
        statuses: [405, 200, 200],
        run: withFollowUp('POST', '/v2/small/blobs/uploads/', { 'Transfer-Encoding': 'chunked' }, chunked([zeros(100_000), zeros(200_000), zeros(1)])),
      },
      {
        name: 'PUT /admin/gc with Expect: 100-continue',
        statuses: [100, 404, 200],
        run: afterContinue('PUT', '/admin/gc', { ...auth, 'Content-Length': MiB }, zeros(MiB)),
      },
      {
        name: 'a chunked upload POST with Expect: 100-continue',
        statuses: [100, 405, 200],
        run: afterContinue('POST', '/v2/small/blobs/uploads/', { 'Transfer-Encoding': 'chunked' }, chunked([zeros(300_000), zeros(5)])),
      },
    ];

    for (const c of cases) {
      it(`${c.name}`, async () => {
        const expected = await onOneThread(one, c.run);
        expect(expected.map((a) => (typeof a === 'number' ? a : (a as { status: number }).status))).toEqual(c.statuses);
        const outcomes = await onBothThreads(two, 3, c.run);
        for (const outcome of [...outcomes.hit, ...outcomes.main]) expect(outcome).toEqual(expected);
      });
    }

    it('POST /v2/small/blobs/uploads/ announcing 100 MB: the answer comes while the body is still on its way', async () => {
      const run = async (conn: RawConnection) => {
        await conn.write(head('POST', '/v2/small/blobs/uploads/', { 'Content-Length': 100_000_000 }));
        const chunk = zeros(256 << 10);
        let sent = 0;
        // The client keeps uploading (with backpressure) until the answer is in.
        while (sent < 100_000_000 && !conn.hasResponse && !conn.closed) {
          if (!(await conn.write(chunk.subarray(0, Math.min(chunk.length, 100_000_000 - sent))))) break;
          sent += chunk.length;
        }
        const answer = summary('POST', await conn.response('POST'));
        return { answer, beforeTheWholeBody: sent < 100_000_000 };
      };
      const expected = await onOneThread(one, run);
      expect(expected.answer.status).toBe(405);
      expect(expected.answer.errorCode).toBe('UNSUPPORTED');
      expect(expected.beforeTheWholeBody).toBe(true);
      const outcomes = await onBothThreads(two, 3, run);
      for (const outcome of [...outcomes.hit, ...outcomes.main]) expect(outcome).toEqual(expected);
    });
  });

  it('printed and logged no ERR_HTTP_HEADERS_SENT nor any other error in all of it', async () => {
    await expectCleanOutput();
  });
});
