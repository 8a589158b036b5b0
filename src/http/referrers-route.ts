// GET/HEAD /v2/<name>/referrers/<digest>: the upstream's referrers index, passed on (as an OCI
// index only, see referrers-service.ts) with the filters it applied.
import { parseDigest } from '../oci/digest.ts';
import { fetchReferrers } from '../proxy/referrers-service.ts';
import type { Route } from '../proxy/upstream-router.ts';
import type { Upstream } from '../proxy/upstream.ts';
import { API_VERSION_HEADERS } from './registry-headers.ts';

export async function serveReferrers(route: Route<Upstream>, digestRef: string, artifactType: string | undefined, method: string): Promise<Response> {
  const result = await fetchReferrers(route.upstream, route.repository, parseDigest(digestRef).value, artifactType);
  const headers: Record<string, string> = {
    ...API_VERSION_HEADERS,
    'Content-Type': result.contentType,
    'Content-Length': String(result.body.length),
  };
  if (result.filtersApplied) headers['OCI-Filters-Applied'] = result.filtersApplied;
  if (route.namespace !== undefined) headers['OCI-Namespace'] = route.namespace;
  return new Response(method === 'HEAD' ? null : result.body, { status: 200, headers });
}
