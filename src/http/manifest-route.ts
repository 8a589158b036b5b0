// GET/HEAD /v2/<name>/manifests/<reference>: the stored bytes, verbatim, with their media type.
import type { ManifestCacheResult, ManifestService } from '../proxy/manifest-service.ts';
import type { StoredManifest } from '../cache/manifest-store.ts';
import type { CacheAccounting } from '../cache/cache-accounting.ts';
import type { Route } from '../proxy/upstream-router.ts';
import type { Upstream } from '../proxy/upstream.ts';
import type { ServerResponse } from 'node:http';
import { contentHeaders, sendContent } from './registry-headers.ts';

export async function serveManifest(
  manifests: ManifestService,
  accounting: CacheAccounting,
  route: Route<Upstream>,
  reference: string,
  method: string,
  res: ServerResponse,
): Promise<Response> {
  const { manifest, cache } = await manifests.get(route.upstream, route.repository, reference);
  if (method === 'GET') accounting.manifestServed(manifest);
  return manifestResponse(res, manifest, cache, route.namespace, method);
}

export function manifestResponse(res: ServerResponse, manifest: StoredManifest, cache: ManifestCacheResult, namespace: string | undefined, method: string): Response {
  return sendContent(res, manifestHeaders(manifest, cache, namespace), method === 'HEAD' ? undefined : manifest.body);
}

/** The headers of a manifest answer; the manifest fast path sends the same ones. */
export function manifestHeaders(manifest: StoredManifest, cache: ManifestCacheResult, namespace: string | undefined): Record<string, string> {
  return contentHeaders({ contentType: manifest.mediaType, digest: manifest.digest, length: manifest.body.length, cache, namespace });
}
