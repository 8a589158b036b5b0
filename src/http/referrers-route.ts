// GET/HEAD /v2/<name>/referrers/<digest>: the referrers index wharf answers for the subject
// (referrers-service.ts), filtered by artifactType when asked, with the filter it applied.
import { parseDigest } from '../oci/digest.ts';
import type { ReferrersService } from '../proxy/referrers-service.ts';
import type { Route } from '../proxy/upstream-router.ts';
import type { Upstream } from '../proxy/upstream.ts';
import { API_VERSION_HEADERS } from './registry-headers.ts';

export async function serveReferrers(referrers: ReferrersService, route: Route<Upstream>, digestRef: string, artifactType: string | undefined, method: string): Promise<Response> {
  const result = await referrers.get(route.upstream, route.repository, parseDigest(digestRef).value, artifactType || undefined);
  const headers: Record<string, string> = {
    ...API_VERSION_HEADERS,
    'Content-Type': result.contentType,
    'Content-Length': String(result.body.length),
    'X-Wharf-Cache': result.cache,
  };
  if (result.filtersApplied) headers['OCI-Filters-Applied'] = result.filtersApplied;
  if (route.namespace !== undefined) headers['OCI-Namespace'] = route.namespace;
  return new Response(method === 'HEAD' ? null : result.body, { status: 200, headers });
}
