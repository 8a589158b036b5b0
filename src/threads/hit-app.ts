// The Hono app of a hit thread: /v2/, manifests the cache may answer alone (by digest, fresh
// tags; those in this thread's memory were already answered by the manifest fast path in front)
// and blobs on disk are answered here; everything else (misses, stale tags, fills, tag
// lists, the operator's endpoints) goes to the main thread, which owns the upstreams.
import type { Context } from 'hono';
import { Hono } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Logger } from 'pino';
import type { BlobStore } from '../cache/blob-store.ts';
import { errorResponse } from '../http/error-response.ts';
import { observeRequests } from '../http/observe-requests.ts';
import type { RequestObserver } from '../http/request-observer.ts';
import { parseRegistryPath } from '../http/parse-registry-path.ts';
import { baseResponse } from '../http/registry-handler.ts';
import { manifestResponse } from '../http/manifest-route.ts';
import { negotiateManifest } from '../oci/accept.ts';
import { blobHeadResponse, sendBlob } from '../http/blob-route.ts';
import type { FileSender } from '../http/file-sender.ts';
import type { WharfEnv } from '../http/wharf-env.ts';
import { looksLikeDigest, parseDigest } from '../oci/digest.ts';
import type { ManifestService } from '../proxy/manifest-service.ts';
import type { RepositoryLinks } from '../proxy/repository-links.ts';
import type { ConfiguredUpstream, UpstreamRouter } from '../proxy/upstream-router.ts';
import type { Forwarder } from './forward.ts';
import type { FillFollowing } from './followed-fill.ts';
import type { HitReporter } from './hit-reporter.ts';
import { scopeName, type AccessGate } from '../auth/access-gate.ts';
import { gateRequest } from '../http/gate-request.ts';

export interface HitAppDeps {
  readonly logger: Logger;
  readonly manifests: ManifestService;
  readonly blobStore: BlobStore;
  /** Which repository may see which digest; what is not linked goes to the main thread to confirm. */
  readonly links: Pick<RepositoryLinks, 'has'>;
  readonly files: FileSender;
  readonly router: UpstreamRouter<ConfiguredUpstream>;
  readonly forwarder: Forwarder;
  readonly reporter: HitReporter;
  readonly observer: RequestObserver;
  /** Who may pull what; undefined: anyone may pull anything. */
  readonly gate: AccessGate | undefined;
}

export function createHitApp(deps: HitAppDeps): Hono<WharfEnv> {
  const app = new Hono<WharfEnv>();
  const observe = observeRequests(deps.observer, deps.files);
  app.use('/v2', observe);
  app.use('/v2/*', observe);
  app.all('*', async (c) => (await answerFromCache(c, deps)) ?? forward(c, deps.forwarder, following(c, deps)));
  app.onError((err, c) => {
    c.set('forwarded', false);
    return errorResponse(err, c.env.incoming.method ?? 'GET', deps.logger);
  });
  return app;
}

/** The answer when the cache alone gives it, else undefined (the main thread decides). */
async function answerFromCache(c: Context<WharfEnv>, deps: HitAppDeps): Promise<Response | undefined> {
  const method = c.env.incoming.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  const target = parseRegistryPath(c.req.path);
  if (target.kind !== 'base' && target.kind !== 'manifest' && target.kind !== 'blob') return undefined;
  // Only what this thread answers is authenticated here; the rest the main thread decides.
  const gate = deps.gate;
  const asking = gate && gateRequest(c.env.incoming);
  const identity = gate && (await gate.identify(asking!));
  if (identity) c.set('identity', identity);
  if (target.kind === 'base') {
    c.set('requestKind', 'base');
    gate?.checkPing(identity!, asking!);
    return baseResponse(method);
  }
  let route;
  try {
    route = deps.router.route(target.name, c.req.query('ns'));
  } catch {
    return undefined; // the main thread answers bad names with the proper error
  }
  const mark = () => {
    c.set('requestKind', target.kind);
    c.set('upstreamName', route.upstream.name);
    c.set('repository', route.repository);
  };
  if (gate) {
    mark(); // a refusal answered here is logged and counted under its kind
    gate.checkPull(identity!, { upstream: route.upstream.name, repository: route.repository, asked: scopeName(target.name, route) }, asking!);
  }
  if (target.kind === 'manifest') {
    const manifest = await deps.manifests.cached(route.upstream, route.repository, target.reference).catch(() => undefined);
    // A type the client does not take: the main thread decides what it gets instead.
    if (!manifest || negotiateManifest(c.req.header('accept'), manifest.mediaType) !== 'stored') return undefined;
    mark();
    if (method === 'GET') deps.reporter.manifestServed(manifest);
    return manifestResponse(c.env.outgoing, manifest, 'hit', route.namespace, method);
  }
  if (!looksLikeDigest(target.digest)) return undefined;
  const digest = parseDigest(target.digest).value;
  const linked = await deps.links.has({ upstream: route.upstream.name, repository: route.repository }, digest).catch(() => false);
  if (!linked) return undefined;
  const info = await deps.blobStore.stat(digest).catch(() => undefined);
  if (!info) return undefined;
  mark();
  deps.reporter.blobUsed(digest);
  if (method === 'HEAD') return blobHeadResponse(c.env.outgoing, digest, info.size, 'hit', route.namespace);
  return sendBlob(c.env.outgoing, { kind: 'cached', info }, { digest, rangeHeader: c.req.header('range'), namespace: route.namespace, files: deps.files });
}

/**
 * For a whole-blob GET: how this thread sends the blob itself should the main thread hand over
 * its running fill (threads/followed-fill.ts). A Range, a HEAD, or a store without local files
 * are forwarded as before.
 */
function following(c: Context<WharfEnv>, deps: HitAppDeps): FillFollowing | undefined {
  if (c.env.incoming.method !== 'GET' || c.req.header('range') !== undefined || !deps.blobStore.openFilling) return undefined;
  const target = parseRegistryPath(c.req.path);
  if (target.kind !== 'blob' || !looksLikeDigest(target.digest)) return undefined;
  return { files: deps.files, store: deps.blobStore, digest: parseDigest(target.digest).value };
}

async function forward(c: Context<WharfEnv>, forwarder: Forwarder, follow: FillFollowing | undefined): Promise<Response> {
  // The main thread logs and counts this request; counting it here too would double it.
  c.set('forwarded', true);
  await forwarder.forward(c.env.incoming, c.env.outgoing, follow);
  return RESPONSE_ALREADY_SENT;
}
