// GET /v2/<name>/tags/list[?n=&last=]: sorted, paged by wharf, Link to the next page.
import { PaginationInvalidError } from '../errors.ts';
import type { Route } from '../proxy/upstream-router.ts';
import type { Upstream } from '../proxy/upstream.ts';
import { pageTags, type TagListService } from '../proxy/tag-list-service.ts';
import { API_VERSION_HEADERS, CACHE_HEADER } from './registry-headers.ts';
import { tagListBody } from './tag-list-body.ts';

export async function serveTagList(
  tagLists: TagListService,
  route: Route<Upstream>,
  clientName: string,
  query: { n: string | undefined; last: string | undefined; ns: string | undefined },
  method: string,
): Promise<Response> {
  const n = parsePageSize(query.n);
  const { tags, cache } = await tagLists.list(route.upstream, route.repository);
  const page = pageTags(tags, n, query.last);
  const body = tagListBody(clientName, page.tags);
  const headers: Record<string, string> = {
    ...API_VERSION_HEADERS,
    'Content-Type': 'application/json',
    'Content-Length': String(body.byteLength),
    [CACHE_HEADER]: cache,
  };
  if (route.namespace !== undefined) headers['OCI-Namespace'] = route.namespace;
  if (page.nextLast !== undefined) {
    const next = new URLSearchParams({ n: String(n), last: page.nextLast });
    if (query.ns) next.set('ns', query.ns);
    headers.Link = `</v2/${clientName}/tags/list?${next}>; rel="next"`;
  }
  if (method === 'HEAD') return new Response(null, { status: 200, headers });
  return new Response(body.text ?? body.stream(), { status: 200, headers });
}

function parsePageSize(n: string | undefined): number | undefined {
  if (n === undefined || n === '') return undefined;
  if (!/^\d{1,9}$/.test(n)) throw new PaginationInvalidError(n);
  return Number(n);
}
