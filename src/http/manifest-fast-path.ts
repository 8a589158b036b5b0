// Manifests held in memory answered straight on the Node request, before Hono. Clients ask for
// tags far more often than for anything else (every pull, every CI job polling a base image),
// and for these tiny answers the framework was most of the cost: Hono's request, context and
// response objects, per-request closures and a close listener (docs/benchmarks.md). Only memory
// is consulted, synchronously, so a miss costs nothing: anything else, or anything unusual about
// the request, goes on to the full handler, which has the same rules and every error path.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StoredManifest } from '../cache/manifest-store.ts';
import type { ManifestService } from '../proxy/manifest-service.ts';
import type { ConfiguredUpstream, UpstreamRouter } from '../proxy/upstream-router.ts';
import { clientInfo } from './client-info.ts';
import { FastTargets } from './fast-targets.ts';
import { manifestHeaders } from './manifest-route.ts';
import { negotiateManifest } from '../oci/accept.ts';
import type { RequestObserver } from './request-observer.ts';
import type { AccessGate, ConnectionMemo } from '../auth/access-gate.ts';
import type { Identity } from '../auth/identity.ts';
import { gateRequest } from './gate-request.ts';

export interface ManifestFastPathDeps {
  readonly router: UpstreamRouter<ConfiguredUpstream>;
  readonly manifests: Pick<ManifestService, 'cachedInMemory'>;
  readonly observer: RequestObserver;
  /** Bookkeeping for a manifest sent by GET (its blobs count as used). */
  readonly manifestServed: (manifest: StoredManifest) => void;
  /** When set, only a caller memory says may pull is answered here (a cached token, anonymous by rule). */
  readonly gate?: AccessGate | undefined;
}

export class ManifestFastPath {
  readonly #deps: ManifestFastPathDeps;
  readonly #targets: FastTargets;
  /**
   * Per manifest and OCI-Namespace (or ''): its answer's headers, a flat list ending in the
   * request id's slot. Keyed weakly by the manifest itself: held exactly as long as memory holds
   * that manifest, never keeping one alive past the memory store's bounds.
   */
  readonly #blocks = new WeakMap<StoredManifest, Map<string, readonly string[]>>();

  constructor(deps: ManifestFastPathDeps) {
    this.#deps = deps;
    this.#targets = new FastTargets(deps.router);
  }

  /** Answers and returns true when memory alone answers this request; else touches nothing. */
  answer(req: IncomingMessage, res: ServerResponse): boolean {
    const started = performance.now();
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const url = req.url ?? '';
    const target = this.#targets.of(url);
    if (target === undefined) return false;
    const { route } = target;
    let manifest;
    try {
      manifest = this.#deps.manifests.cachedInMemory(route.upstream, route.repository, target.reference);
    } catch {
      return false; // the full handler answers bad references with the proper error
    }
    // A type the client does not take: the full handler decides what it gets instead.
    if (!manifest || negotiateManifest(req.headers.accept, manifest.mediaType) !== 'stored') return false;
    const gate = this.#deps.gate;
    const client = clientInfo(req);
    let identity: Identity | undefined;
    if (gate) {
      const authorization = req.headers.authorization;
      const asking = { authorization: authorization === '' ? undefined : authorization, address: client.address, fingerprint: client.certificate?.fingerprint256 };
      const wanted = { upstream: route.upstream.name, repository: route.repository, asked: target.scope };
      identity = gate.mayPullNow(req.socket as ConnectionMemo, () => gateRequest(req, client), asking, wanted, Date.now());
      // Anything but a clear yes is the full handler's: it verifies, challenges and refuses.
      if (!identity) return false;
    }

    const observer = this.#deps.observer;
    const reqId = observer.requestId(headerOf(req, 'x-request-id'));
    const headers = this.#headerBlock(manifest, route.namespace).slice();
    headers[headers.length - 1] = reqId;
    const socket = res.socket;
    const bytesBefore = socket?.bytesWritten ?? 0;
    try {
      res.writeHead(200, headers);
    } catch {
      return false; // a header Node refuses (a stored media type gone bad): the full handler's error path
    }
    res.end(method === 'GET' ? manifest.body : undefined);
    if (method === 'GET') this.#deps.manifestServed(manifest);
    observer.record({
      reqId,
      method,
      url,
      status: 200,
      kind: 'manifest',
      cache: 'hit',
      upstream: route.upstream.name,
      repository: route.repository,
      pulledAs: target.pulled,
      bytes: (socket?.bytesWritten ?? bytesBefore) - bytesBefore,
      seconds: (performance.now() - started) / 1000,
      completed: true,
      userAgent: headerOf(req, 'user-agent'),
      identity,
      client,
    });
    return true;
  }

  // Node takes a flat list of names and values as well as an object, and the same list serves
  // every request for this manifest: only the request id differs, in the last slot.
  #headerBlock(manifest: StoredManifest, namespace: string | undefined): readonly string[] {
    let blocks = this.#blocks.get(manifest);
    if (blocks === undefined) {
      blocks = new Map();
      this.#blocks.set(manifest, blocks);
    }
    let headers = blocks.get(namespace ?? '');
    if (headers === undefined) {
      headers = [...Object.entries(manifestHeaders(manifest, 'hit', namespace)).flat(), 'X-Request-Id', ''];
      blocks.set(namespace ?? '', headers);
    }
    return headers;
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
