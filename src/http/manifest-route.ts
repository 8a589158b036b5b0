// GET/HEAD /v2/<name>/manifests/<reference>: the stored bytes, verbatim, with their media type,
// or what the client's Accept header allows instead (oci/accept.ts).
import type { ManifestCacheResult, ManifestService } from '../proxy/manifest-service.ts';
import type { StoredManifest } from '../cache/manifest-store.ts';
import type { CacheAccounting } from '../cache/cache-accounting.ts';
import type { Route } from '../proxy/upstream-router.ts';
import type { Upstream } from '../proxy/upstream.ts';
import type { ServerResponse } from 'node:http';
import { contentHeaders, sendContent } from './registry-headers.ts';
import { negotiateManifest, refusalMessage } from '../oci/accept.ts';
import { ManifestNotAcceptedError } from '../errors.ts';
import { looksLikeDigest } from '../oci/digest.ts';

export async function serveManifest(
  manifests: ManifestService,
  accounting: CacheAccounting,
  route: Route<Upstream>,
  reference: string,
  method: string,
  res: ServerResponse,
  accept: string | undefined,
  /** Told of a manifest sent to a client by GET (prefetch-service.ts). */
  onServed?: (manifest: StoredManifest) => void,
): Promise<Response> {
  let { manifest, cache } = await manifests.get(route.upstream, route.repository, reference);
  const byDigest = looksLikeDigest(reference);
  const negotiated = negotiateManifest(accept, manifest.mediaType, byDigest);
  if (negotiated === 'amd64-child') {
    const child = amd64Child(manifest);
    if (!child) throw new ManifestNotAcceptedError(reference, refusalMessage(manifest.mediaType));
    ({ manifest, cache } = await manifests.get(route.upstream, route.repository, child));
  }
  if (negotiated === 'refused' || negotiateManifest(accept, manifest.mediaType, true) !== 'stored') {
    throw new ManifestNotAcceptedError(reference, refusalMessage(manifest.mediaType));
  }
  if (method === 'GET') {
    accounting.manifestServed(manifest);
    onServed?.(manifest);
  }
  return manifestResponse(res, manifest, cache, route.namespace, method);
}

/** The linux/amd64 entry of a manifest list, what distribution sends a client that takes no lists. */
function amd64Child(list: StoredManifest): string | undefined {
  try {
    const parsed = JSON.parse(list.body.toString('utf8')) as { manifests?: Array<{ digest?: unknown; platform?: { os?: unknown; architecture?: unknown } }> };
    const entry = parsed.manifests?.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64');
    return typeof entry?.digest === 'string' ? entry.digest : undefined;
  } catch {
    return undefined;
  }
}

export function manifestResponse(res: ServerResponse, manifest: StoredManifest, cache: ManifestCacheResult, namespace: string | undefined, method: string): Response {
  return sendContent(res, manifestHeaders(manifest, cache, namespace), method === 'HEAD' ? undefined : manifest.body);
}

/** The headers of a manifest answer; the manifest fast path sends the same ones. */
export function manifestHeaders(manifest: StoredManifest, cache: ManifestCacheResult, namespace: string | undefined): Record<string, string> {
  return contentHeaders({ contentType: manifest.mediaType, digest: manifest.digest, length: manifest.body.length, cache, namespace });
}
