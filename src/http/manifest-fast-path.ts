// Manifests held in memory answered before Hono: on the Node request, or straight on the socket
// by the fast connections (fast-connections.ts), before Node's HTTP machinery. Clients ask for
// tags far more often than for anything else (every pull, every CI job polling a base image),
// and for these tiny answers the framework was most of the cost: Hono's request, context and
// response objects, per-request closures and a close listener (docs/benchmarks.md). Only memory
// is consulted, synchronously, so a miss costs nothing: anything else, or anything unusual about
// the request, goes on to the full handler, which has the same rules and every error path.
import { validateHeaderName, validateHeaderValue, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { StoredManifest } from '../cache/manifest-store.ts';
import type { ManifestService } from '../proxy/manifest-service.ts';
import type { ConfiguredUpstream, UpstreamRouter } from '../proxy/upstream-router.ts';
import { clientInfo, socketClient, type ClientInfo } from './client-info.ts';
import { FastTargets, type FastTarget } from './fast-targets.ts';
import { manifestHeaders } from './manifest-route.ts';
import { negotiateManifest } from '../oci/accept.ts';
import type { RequestObserver } from './request-observer.ts';
import type { AccessGate, ConnectionMemo, GateRequest } from '../auth/access-gate.ts';
import type { Identity } from '../auth/identity.ts';
import { gateRequest, gateRequestOf } from './gate-request.ts';
import type { SimpleRequest } from './simple-request.ts';
import { ownBytes } from '../own-bytes.ts';

export interface ManifestFastPathDeps {
  readonly router: UpstreamRouter<ConfiguredUpstream>;
  readonly manifests: Pick<ManifestService, 'cachedInMemory'>;
  readonly observer: RequestObserver;
  /** Bookkeeping for a manifest sent by GET (its blobs count as used). */
  readonly manifestServed: (manifest: StoredManifest) => void;
  /** When set, only a caller memory says may pull is answered here (a cached token, anonymous by rule). */
  readonly gate?: AccessGate | undefined;
}

/** What the fast path reads of a request, from Node's request or a SimpleRequest. */
type FastAsk = Pick<SimpleRequest, 'method' | 'url' | 'accept' | 'authorization'>;

interface FastHit {
  readonly manifest: StoredManifest;
  readonly target: FastTarget;
  readonly answer: ManifestAnswer;
  readonly identity: Identity | undefined;
}

/** One manifest's answer under one OCI-Namespace, in the two forms its writers take. */
interface ManifestAnswer {
  /** Node's flat list of names and values, ending in the request id's slot. */
  readonly list: readonly string[];
  /** Status line and header lines up to the request id's value, latin1 as Node writes them; null when a header is not fit to send. */
  readonly head: Buffer | null;
}

export class ManifestFastPath {
  readonly #deps: ManifestFastPathDeps;
  readonly #targets: FastTargets;
  /**
   * Per manifest and OCI-Namespace (or ''): its answer's headers. Keyed weakly by the manifest
   * itself: held exactly as long as memory holds that manifest, never keeping one alive past the
   * memory store's bounds.
   */
  readonly #answers = new WeakMap<StoredManifest, Map<string, ManifestAnswer>>();

  constructor(deps: ManifestFastPathDeps) {
    this.#deps = deps;
    this.#targets = new FastTargets(deps.router);
  }

  /** Answers and returns true when memory alone answers this request; else touches nothing. */
  answer(req: IncomingMessage, res: ServerResponse): boolean {
    const started = performance.now();
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const headers = req.headers;
    const client = clientInfo(req);
    const hit = this.#find({ method, url: req.url ?? '', accept: headers.accept, authorization: headers.authorization }, req.socket as ConnectionMemo, client, () => gateRequest(req, client));
    if (hit === undefined) return false;
    const reqId = this.#deps.observer.requestId(headerOf(req, 'x-request-id'));
    const list = hit.answer.list.slice();
    list[list.length - 1] = reqId;
    const socket = res.socket;
    const bytesBefore = socket?.bytesWritten ?? 0;
    try {
      res.writeHead(200, list);
    } catch {
      return false; // a header Node refuses (a stored media type gone bad): the full handler's error path
    }
    res.end(method === 'GET' ? hit.manifest.body : undefined);
    this.#served(hit, method, req.url ?? '', reqId, (socket?.bytesWritten ?? bytesBefore) - bytesBefore, started, headerOf(req, 'user-agent'), client);
    return true;
  }

  /**
   * Writes the whole answer to the socket and returns true when memory alone answers this
   * request; else writes nothing. tail: the header lines after the request id (Date, the
   * connection's) and the blank line, latin1.
   */
  answerOnSocket(request: SimpleRequest, socket: Socket, tail: Buffer): boolean {
    const started = performance.now();
    const client = socketClient(socket);
    const hit = this.#find(request, socket as ConnectionMemo, client, () => gateRequestOf(request.authorization, request.host, client));
    const head = hit?.answer.head;
    if (hit === undefined || head == null) return false;
    const reqId = this.#deps.observer.requestId(request.requestId);
    const body = request.method === 'GET' ? hit.manifest.body : undefined;
    // One buffer, one write, put together from parts kept encoded: no string for the head is
    // made (and flattened) per request. The request id is latin1 as Node writes it.
    const bytes = Buffer.allocUnsafe(head.length + reqId.length + 2 + tail.length + (body?.length ?? 0));
    bytes.set(head, 0);
    let at = head.length + bytes.write(reqId, head.length, 'latin1');
    bytes[at++] = 0x0d;
    bytes[at++] = 0x0a;
    bytes.set(tail, at);
    if (body) bytes.set(body, at + tail.length);
    socket.write(bytes);
    this.#served(hit, request.method, request.url, reqId, bytes.length, started, request.userAgent, client);
    return true;
  }

  #find(ask: FastAsk, memo: ConnectionMemo, client: ClientInfo, gateAsk: () => GateRequest): FastHit | undefined {
    const target = this.#targets.of(ask.url);
    if (target === undefined) return undefined;
    const { route } = target;
    let manifest;
    try {
      manifest = this.#deps.manifests.cachedInMemory(route.upstream, route.repository, target.reference);
    } catch {
      return undefined; // the full handler answers bad references with the proper error
    }
    // A type the client does not take: the full handler decides what it gets instead.
    if (!manifest || negotiateManifest(ask.accept, manifest.mediaType) !== 'stored') return undefined;
    const gate = this.#deps.gate;
    let identity: Identity | undefined;
    if (gate) {
      const authorization = ask.authorization;
      const asking = { authorization: authorization === '' ? undefined : authorization, address: client.address, fingerprint: client.certificate?.fingerprint256 };
      const wanted = { upstream: route.upstream.name, repository: route.repository, asked: target.scope };
      identity = gate.mayPullNow(memo, gateAsk, asking, wanted, Date.now());
      // Anything but a clear yes is the full handler's: it verifies, challenges and refuses.
      if (!identity) return undefined;
    }
    return { manifest, target, answer: this.#answerFor(manifest, route.namespace), identity };
  }

  #served(hit: FastHit, method: string, url: string, reqId: string, bytes: number, started: number, userAgent: string | undefined, client: ClientInfo): void {
    const { target } = hit;
    if (method === 'GET') this.#deps.manifestServed(hit.manifest);
    this.#deps.observer.record({
      reqId,
      method,
      url,
      status: 200,
      kind: 'manifest',
      cache: 'hit',
      upstream: target.route.upstream.name,
      repository: target.route.repository,
      pulledAs: target.pulled,
      bytes,
      seconds: (performance.now() - started) / 1000,
      completed: true,
      userAgent,
      identity: hit.identity,
      client,
    });
  }

  // The same headers serve every request for this manifest: only the request id differs.
  #answerFor(manifest: StoredManifest, namespace: string | undefined): ManifestAnswer {
    let answers = this.#answers.get(manifest);
    if (answers === undefined) {
      answers = new Map();
      this.#answers.set(manifest, answers);
    }
    let answer = answers.get(namespace ?? '');
    if (answer === undefined) {
      const entries = Object.entries(manifestHeaders(manifest, 'hit', namespace));
      answer = { list: [...entries.flat(), 'X-Request-Id', ''], head: socketHead(entries) };
      answers.set(namespace ?? '', answer);
    }
    return answer;
  }
}

// Written past Node, so checked here as Node checks what writeHead is given.
function socketHead(entries: ReadonlyArray<readonly [string, string]>): Buffer | null {
  let head = 'HTTP/1.1 200 OK\r\n';
  for (const [name, value] of entries) {
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      return null;
    }
    head += `${name}: ${value}\r\n`;
  }
  return ownBytes(`${head}X-Request-Id: `, 'latin1');
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
