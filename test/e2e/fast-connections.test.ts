// Fast connections answer cached manifests on the socket, before Node's HTTP machinery. Their
// answers must be Node's answers byte for byte (but the Date), and the first request they do not
// answer must reach Node as if Node had read the connection from the start: pipelined bytes,
// split heads, bad requests and all. Two servers over the same fast path: one with fast
// connections, one with Node alone, asked the same things over raw TCP.
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedManifestStore } from '../../src/cache/embedded-manifest-store.ts';
import { MemoryCachedManifestStore } from '../../src/cache/memory-cached-manifest-store.ts';
import type { StoredManifest } from '../../src/cache/manifest-store.ts';
import { createLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { TopRepositories } from '../../src/metrics/top-repositories.ts';
import { FastConnections } from '../../src/http/fast-connections.ts';
import { closeGracefully, listen } from '../../src/http/listen.ts';
import { ManifestFastPath } from '../../src/http/manifest-fast-path.ts';
import { RequestObserver } from '../../src/http/request-observer.ts';
import { registryRequestListener } from '../../src/http/request-listener.ts';
import type { WharfEnv } from '../../src/http/wharf-env.ts';
import { ManifestService } from '../../src/proxy/manifest-service.ts';
import { UpstreamRouter } from '../../src/proxy/upstream-router.ts';
import { header, pipelined, RawConnection, rawRequest, type RawAnswer, type RawRequest } from '../support/raw-http-client.ts';
import { makeImage } from '../support/test-images.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { LogLines } from '../support/log-lines.ts';
import { until } from '../support/until.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { metricValue } from '../support/metrics.ts';

const image = makeImage({ name: 'fast-conn', files: { 'f.txt': 'fast connections\n' } });
const manifest: StoredManifest = { digest: image.manifest.digest, mediaType: image.manifest.mediaType, body: image.manifest.body };
const TAG = '/v2/fast/manifests/fresh';

/** With X-Request-Id ci-1 unless headers bring one. */
const get = (target: string, headers: ReadonlyArray<readonly [string, string]> = [], method = 'GET') =>
  rawRequest({ method, target, headers: headers.some(([n]) => n === 'X-Request-Id') ? headers : [['X-Request-Id', 'ci-1'], ...headers] });
/** The head with its Date line blanked: the one line that may differ between two answers. */
const comparable = (answer: RawAnswer) => answer.head.replace(/^Date: .*$/m, 'Date: -');

describe.each([
  ['reading into the shared buffer', true],
  ["reading Node's 'data' events", false],
])('fast connections, %s', (_how, sharedReads) => {
  let dir: TempDir;
  let store: MemoryCachedManifestStore;
  let fastServer: Server;
  let nodeServer: Server;
  let fast: FastConnections;
  let fastPort: number;
  let nodePort: number;
  const logs = new LogLines();
  const open: RawConnection[] = [];
  const connection = (port: number) => {
    const c = new RawConnection(port);
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    dir = await makeTempDir('wharf-fast-connections-');
    let fastPath: ManifestFastPath;
    ({ store, fastPath } = await cachedTag(dir, createLogger('info', logs)));
    // The full handler stands in as a Hono app that says it was asked, and what it was sent.
    const app = new Hono<WharfEnv>();
    app.all('*', async (c) => c.text(`full handler: ${c.req.method} ${c.req.path} ${(await c.req.text()).length}`, 203));
    fastServer = createServer(registryRequestListener(app, fastPath));
    fast = new FastConnections(fastServer, fastPath, { sharedReads });
    nodeServer = createServer(registryRequestListener(app, fastPath));
    fastPort = (await listen(fastServer, { host: '127.0.0.1', port: 0 })).port;
    nodePort = (await listen(nodeServer, { host: '127.0.0.1', port: 0 })).port;
  });

  afterAll(async () => {
    for (const c of open) c.close();
    await closeGracefully(fastServer, 1000, fast);
    await closeGracefully(nodeServer, 1000);
    await store.close();
    await dir.cleanup();
  });

  it('answers a cached tag, GET and HEAD, with the bytes Node sends, and keeps the connection', async () => {
    for (const method of ['GET', 'HEAD']) {
      const viaFast = connection(fastPort);
      const fastAnswer = await viaFast.send(get(TAG, [['Accept', manifest.mediaType]], method));
      expect(fast.held, method).toBe(1);
      const nodeAnswer = await connection(nodePort).send(get(TAG, [['Accept', manifest.mediaType]], method));
      expect(fastAnswer.status, method).toBe(200);
      expect(comparable(fastAnswer), method).toBe(comparable(nodeAnswer));
      expect(fastAnswer.body.equals(method === 'GET' ? manifest.body : Buffer.alloc(0)), method).toBe(true);
      expect(header(fastAnswer, 'date')).toMatch(/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
      // Still held: the next request on it is read here too.
      expect((await viaFast.send(get(TAG))).status).toBe(200);
      expect(fast.held, method).toBe(1);
      viaFast.close();
      await until(() => fast.held === 0, 'the closed connection let go');
    }
    const line = logs.lines.find((l) => l.method === 'HEAD' && l.reqId === 'ci-1');
    expect(line).toMatchObject({ msg: 'request', url: TAG, status: 200, cache: 'hit', completed: true, client: '127.0.0.1' });
  });

  it('hands the connection to Node at the first request it does not answer, and Node answers the rest', async () => {
    const c = connection(fastPort);
    expect((await c.send(get(TAG))).status).toBe(200);
    expect(fast.held).toBe(1);
    const blob = await c.send(get(`/v2/fast/blobs/${manifest.digest}`));
    expect(blob.status).toBe(203);
    expect(blob.body.toString()).toBe(`full handler: GET /v2/fast/blobs/${manifest.digest} 0`);
    expect(fast.held).toBe(0);
    // Node's now, on its own fast path.
    const again = await c.send(get(TAG));
    expect(again.status).toBe(200);
    expect(again.body.equals(manifest.body)).toBe(true);
  });

  it('answers pipelined requests in order across the hand-over, a body and all', async () => {
    const requests = [
      get(TAG),
      get(TAG, [], 'HEAD'),
      rawRequest({ method: 'PUT', target: '/v2/fast/manifests/x', headers: [], body: Buffer.from('twelve bytes') }),
      get(TAG),
      get('/v2/fast/manifests/missing'),
      get(TAG, [], 'HEAD'),
    ];
    const answer = await connection(fastPort).send(pipelined(requests));
    const answers = [...answer.earlier!, answer];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 203, 200, 203, 200]);
    expect(answers[0]!.body.equals(manifest.body)).toBe(true);
    expect(answers[1]!.body.length).toBe(0);
    expect(answers[2]!.body.toString()).toBe('full handler: PUT /v2/fast/manifests/x 12');
    expect(answers[3]!.body.equals(manifest.body)).toBe(true);
    expect(answers[4]!.body.toString()).toBe('full handler: GET /v2/fast/manifests/missing 0');
  });

  it('reads a head split across reads', async () => {
    const socket = await rawSocket(fastPort);
    const bytes = get(TAG).bytes;
    const received = collect(socket);
    socket.write(bytes.subarray(0, 20));
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.write(bytes.subarray(20));
    await until(() => received().includes(manifest.body), 'the answer');
    expect(received().toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(fast.held).toBe(1);
    socket.destroy();
  });

  it.each<[string, RawRequest]>([
    ['Connection: close', get(TAG, [['Connection', 'close']])],
    ['HTTP/1.0', rawRequest({ method: 'GET', target: TAG, headers: [['X-Request-Id', 'ci-1']], version: 'HTTP/1.0' })],
    ['a GET with a body', rawRequest({ method: 'GET', target: TAG, headers: [['X-Request-Id', 'ci-1']], body: Buffer.from('x') })],
    ['a chunked GET', rawRequest({ method: 'GET', target: TAG, headers: [['X-Request-Id', 'ci-1']], body: Buffer.from('x'), chunked: true })],
    ['two Host headers', get(TAG, [['Host', 'other']])],
    ['an obs-fold line', { bytes: Buffer.from(`GET ${TAG} HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n`), head: false }],
    ['a bare LF', { bytes: Buffer.from(`GET ${TAG} HTTP/1.1\nHost: h\r\n\r\n`), head: false }],
    ['a NUL in a header', { bytes: Buffer.from(`GET ${TAG} HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n`), head: false }],
    // Go clients try TLS first on an insecure registry, and fall back to HTTP on Node's 400.
    ['a TLS ClientHello on the plain port', { bytes: Buffer.from('16030100de010000da0303a1b2c3d4', 'hex'), head: false }],
    ['a head over the size limit', get(TAG, [['X-Big', 'a'.repeat(20_000)]])],
  ])('answers %s exactly as Node does', async (_what, request) => {
    const fastAnswer = await connection(fastPort).send(request);
    const nodeAnswer = await connection(nodePort).send(request);
    expect(fastAnswer.status).toBe(nodeAnswer.status);
    expect(fastAnswer.status).toBeGreaterThan(0);
    expect(comparable(fastAnswer)).toBe(comparable(nodeAnswer));
    expect(fastAnswer.body.equals(nodeAnswer.body)).toBe(true);
  });

  it('holds requests of a client that does not read, and answers every one once it does', async () => {
    const count = 20_000;
    const serverSide: Socket[] = [];
    const onConnection = (s: Socket) => serverSide.push(s);
    fastServer.on('connection', onConnection);
    const socket = await rawSocket(fastPort);
    fastServer.off('connection', onConnection);
    socket.pause();
    socket.write(Buffer.concat(Array.from({ length: count }, (_, i) => get(TAG, [['X-Request-Id', `r${i}`]]).bytes)));
    // Far more answer bytes (29 MB) than the socket buffers take: the rest waits for the client.
    await new Promise((resolve) => setTimeout(resolve, 300));
    // What the kernel did not take waits as requests, not as answers queued in memory.
    expect(serverSide[0]!.writableLength).toBeLessThan(serverSide[0]!.writableHighWaterMark + 16 * 1024);
    const received = collect(socket);
    socket.resume();
    await until(() => (received().toString('latin1').match(/^X-Request-Id: r\d+\r$/gm) ?? []).length >= count, 'every answer', 10_000);
    const text = received().toString('latin1');
    const ids = [...text.matchAll(/^X-Request-Id: (r\d+)\r$/gm)].map((m) => m[1]);
    expect(ids).toEqual(Array.from({ length: count }, (_, i) => `r${i}`));
    expect(text.split('HTTP/1.1 200 OK\r\n').length - 1).toBe(count);
    expect(fast.held).toBeGreaterThanOrEqual(1);
    socket.destroy();
  });
});

describe.each([1, 2])('fast connections in a wharf with threads: %i', (threads) => {
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/fast', 'v1', image);
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], threads });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  it('answers a cached tag on every fresh connection, whichever thread the kernel gives it, and counts each', async () => {
    const path = '/v2/library/fast/manifests/v1';
    const full = await fetch(`${wharf.url}${path}`, { headers: { accept: manifest.mediaType } });
    expect(full.status).toBe(200);
    await full.arrayBuffer();
    const port = Number(new URL(wharf.url).port);
    const before = await metricValue(wharf.url, 'wharf_requests_total', { kind: 'manifest', result: 'hit' });
    const count = 24;
    for (let i = 0; i < count; i++) {
      const c = new RawConnection(port);
      try {
        const answer = await c.send(get(path, [['Accept', manifest.mediaType], ['X-Request-Id', `t${i}`]]));
        expect(answer.status).toBe(200);
        expect(answer.body.equals(manifest.body)).toBe(true);
        expect(header(answer, 'docker-content-digest')).toBe(manifest.digest);
        expect(header(answer, 'x-wharf-cache')).toBe('hit');
        expect(header(answer, 'x-request-id')).toBe(`t${i}`);
      } finally {
        c.close();
      }
    }
    expect(await metricValue(wharf.url, 'wharf_requests_total', { kind: 'manifest', result: 'hit' })).toBe(before + count);
  });
});

describe.each([
  ['reading into the shared buffer', true],
  ["reading Node's 'data' events", false],
])('fast connections: clocks and closing, %s', (_how, sharedReads) => {
  const bareFastServer = (options: { connectionsCheckingInterval?: number } = {}) => bareFastServerReading(sharedReads, options);

  it('closes a connection idle past keepAliveTimeout, and one that never sends past headersTimeout', async () => {
    const { server, fast, port, stop } = await bareFastServer();
    server.keepAliveTimeout = 300;
    server.keepAliveTimeoutBuffer = 0;
    server.headersTimeout = 400;
    try {
      const silent = await rawSocket(port);
      const silentClosed = closedAfter(silent);
      const asked = await rawSocket(port);
      const askedClosed = closedAfter(asked);
      const received = collect(asked);
      asked.write(get('/v2/fast/manifests/fresh').bytes);
      await until(() => received().length > 0, 'the answer');
      expect(received().toString('latin1')).toContain('Keep-Alive: timeout=0\r\n');
      const [silentMs, askedMs] = await Promise.all([silentClosed, askedClosed]);
      expect(silentMs).toBeGreaterThanOrEqual(350);
      expect(silentMs).toBeLessThan(3000);
      expect(askedMs).toBeGreaterThanOrEqual(250);
      expect(askedMs).toBeLessThan(3000);
      await until(() => fast.held === 0, 'the server to let both go');
    } finally {
      await stop();
    }
  });

  it.each([
    ['stops', false],
    ['trickles', true],
  ])('gives a client that starts a head and %s Node\'s 408 once headersTimeout is past', async (_what, trickle) => {
    const { server, port, stop } = await bareFastServer({ connectionsCheckingInterval: 100 });
    server.headersTimeout = 400;
    try {
      const socket = await rawSocket(port);
      const received = collect(socket);
      const closed = closedAfter(socket);
      const bytes = get('/v2/fast/manifests/fresh').bytes;
      socket.write(bytes.subarray(0, 10));
      let sent = 10;
      const dribble = trickle ? setInterval(() => sent < bytes.length - 1 && socket.write(bytes.subarray(sent, ++sent)), 50) : undefined;
      const ms = await closed;
      clearInterval(dribble);
      expect(received().toString('latin1')).toMatch(/^HTTP\/1\.1 408 /);
      expect(ms).toBeGreaterThanOrEqual(350);
      expect(ms).toBeLessThan(5000);
    } finally {
      await stop();
    }
  });

  it('ends held connections at a graceful close without waiting out the grace', async () => {
    const { fast, port, server, cleanup } = await bareFastServer();
    try {
      const socket = await rawSocket(port);
      const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
      socket.on('data', () => undefined);
      await until(() => fast.held === 1, 'the connection to be held');
      const started = Date.now();
      await closeGracefully(server, 20_000, fast);
      await ended;
      expect(Date.now() - started).toBeLessThan(5000);
      expect(fast.held).toBe(0);
      socket.destroy();
    } finally {
      await cleanup();
    }
  });
});

/** A fast path over a memory store holding library/fast:fresh. */
async function cachedTag(dir: TempDir, logger: ReturnType<typeof createLogger>): Promise<{ store: MemoryCachedManifestStore; fastPath: ManifestFastPath }> {
  const store = new MemoryCachedManifestStore(new EmbeddedManifestStore(dir.path), { maxManifests: 10 });
  const router = new UpstreamRouter([{ name: 'docker.io', libraryPrefix: true, offline: false }], 'docker.io');
  const manifests = new ManifestService({ store, memory: store, tagTtlSeconds: 600, logger });
  const observer = new RequestObserver({ logger, metrics: new Metrics({ processMetrics: false }), topRepositories: new TopRepositories() });
  await store.putManifest(manifest);
  await store.putTag({ upstream: 'docker.io', repository: 'library/fast' }, 'fresh', { digest: manifest.digest, mediaType: manifest.mediaType, fetchedAt: Date.now() });
  return { store, fastPath: new ManifestFastPath({ router, manifests, observer, manifestServed: () => undefined }) };
}

/** A fast-connections server of its own (library/fast:fresh cached), for tests that set its clocks or close it. */
async function bareFastServerReading(
  sharedReads: boolean,
  options: { connectionsCheckingInterval?: number },
): Promise<{ server: Server; fast: FastConnections; port: number; stop: () => Promise<void>; cleanup: () => Promise<void> }> {
  const dir = await makeTempDir('wharf-fast-clocks-');
  const { store, fastPath } = await cachedTag(dir, createLogger('silent', new LogLines()));
  const app = new Hono<WharfEnv>();
  app.all('*', (c) => c.text('full handler', 203));
  const server = createServer(options, registryRequestListener(app, fastPath));
  const fast = new FastConnections(server, fastPath, { sharedReads });
  const { port } = await listen(server, { host: '127.0.0.1', port: 0 });
  /** The store and temp dir, for a test that closed the server itself. */
  const cleanup = async () => {
    await store.close();
    await dir.cleanup();
  };
  return {
    server,
    fast,
    port,
    stop: async () => {
      await closeGracefully(server, 500, fast);
      await cleanup();
    },
    cleanup,
  };
}

async function rawSocket(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  return socket;
}

function collect(socket: Socket): () => Buffer {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks);
}

/** Milliseconds from now until the server closes the socket. */
function closedAfter(socket: Socket): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => socket.once('close', () => resolve(Date.now() - started)));
}
