// Dispatches /v2/... requests: parse the path, check the grammar, choose the upstream, call the
// endpoint. Everything thrown ends in error-response.ts.
import type { Context } from 'hono';
import { RegistryError, RouteNotFoundError, UnsupportedError } from '../errors.ts';
import type { BlobService } from '../proxy/blob-service.ts';
import type { CacheAccounting } from '../cache/cache-accounting.ts';
import type { ManifestService } from '../proxy/manifest-service.ts';
import type { TagListService } from '../proxy/tag-list-service.ts';
import type { FileSender } from './file-sender.ts';
import type { UpstreamRouter } from '../proxy/upstream-router.ts';
import type { Upstream } from '../proxy/upstream.ts';
import { parseRegistryPath } from './parse-registry-path.ts';
import { serveManifest } from './manifest-route.ts';
import { getBlob, headBlob } from './blob-route.ts';
import { followsFillsLocally } from './forwarded-client.ts';
import { serveTagList } from './tags-route.ts';
import { serveReferrers } from './referrers-route.ts';
import type { PrefetchService } from '../proxy/prefetch-service.ts';
import type { ReferrersService } from '../proxy/referrers-service.ts';
import { API_VERSION_HEADERS } from './registry-headers.ts';
import type { WharfEnv } from './wharf-env.ts';
import { scopeName, type AccessGate } from '../auth/access-gate.ts';

export interface RegistryServices {
  /** Who may pull what; undefined: anyone may pull anything. */
  readonly gate?: AccessGate | undefined;
  readonly router: UpstreamRouter<Upstream>;
  readonly manifests: ManifestService;
  readonly blobs: BlobService;
  readonly accounting: CacheAccounting;
  readonly tagLists: TagListService;
  readonly referrers: ReferrersService;
  readonly files: FileSender;
  /** Set when an upstream prefetches (upstreams[].prefetch). */
  readonly prefetch?: PrefetchService | undefined;
}

const BASE_BODY = '{}';
const BASE_HEADERS = {
  ...API_VERSION_HEADERS,
  'Content-Type': 'application/json',
  'Content-Length': String(BASE_BODY.length),
};

/** GET /v2/: the API version check every client starts with. */
export function baseResponse(method: string): Response {
  return new Response(method === 'HEAD' ? null : BASE_BODY, { status: 200, headers: BASE_HEADERS });
}

export async function handleRegistryRequest(c: Context<WharfEnv>, services: RegistryServices): Promise<Response> {
  // Hono routes HEAD through GET handlers; the real method decides whether bytes are fetched.
  const method = c.env.incoming.method ?? 'GET';
  const target = parseRegistryPath(c.req.path);
  c.set('requestKind', target.kind === 'upload' || target.kind === 'catalog' || target.kind === 'unknown' ? 'other' : target.kind);
  if (method !== 'GET' && method !== 'HEAD') throw new UnsupportedError();
  const gate = services.gate;
  switch (target.kind) {
    case 'base':
      gate?.checkPing(c.get('identity'), c.get('gateRequest'));
      return baseResponse(method);
    case 'upload':
      throw new UnsupportedError();
    case 'catalog':
      throw new RegistryError('UNSUPPORTED', 404, 'a pull-through cache has no catalog');
    case 'unknown':
      throw new RouteNotFoundError(c.req.path);
  }
  const ns = c.req.query('ns');
  const route = services.router.route(target.name, ns);
  c.set('upstreamName', route.upstream.name);
  c.set('repository', route.repository);
  // Before any store or upstream is asked: a refusal says nothing about what is cached.
  gate?.checkPull(c.get('identity'), { upstream: route.upstream.name, repository: route.repository, asked: scopeName(target.name, route) }, c.get('gateRequest'));
  switch (target.kind) {
    case 'manifest':
      return serveManifest(services.manifests, services.accounting, route, target.reference, method, c.env.outgoing, c.req.header('accept'), (m) =>
        services.prefetch?.manifestServed(route.upstream, route.repository, m),
      );
    case 'blob':
      return method === 'HEAD'
        ? headBlob(services.blobs, route, target.digest, c.env.outgoing)
        : getBlob(services.blobs, services.files, route, target.digest, c.req.header('range'), c.env.outgoing, followsFillsLocally(c.env.incoming));
    case 'tags':
      return serveTagList(services.tagLists, route, target.name, { n: c.req.query('n'), last: c.req.query('last'), ns }, method);
    case 'referrers':
      return serveReferrers(services.referrers, route, target.digest, c.req.query('artifactType'), method);
  }
}
