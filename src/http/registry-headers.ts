// Headers every registry response carries, and the ones that describe a piece of content.
import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';

export const API_VERSION_HEADERS = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;

/**
 * Everything wharf serves shares one origin with its status page: no answer (a manifest, a blob,
 * an error) may be sniffed into HTML or script, whatever an upstream sent.
 */
export const NO_SNIFF_HEADERS = { 'X-Content-Type-Options': 'nosniff' } as const;

/**
 * How wharf answered: hit, miss, coalesced (joined another request's fetch), revalidated
 * (upstream confirmed the cached copy), stale (upstream down or slow), bypass (not cached).
 */
export const CACHE_HEADER = 'X-Wharf-Cache';

export function contentHeaders(opts: {
  contentType: string;
  digest: string;
  length: number | undefined;
  cache: string;
  namespace: string | undefined;
}): Record<string, string> {
  const headers: Record<string, string> = {
    ...API_VERSION_HEADERS,
    ...NO_SNIFF_HEADERS,
    'Content-Type': opts.contentType,
    'Docker-Content-Digest': opts.digest,
    ETag: `"${opts.digest}"`,
    [CACHE_HEADER]: opts.cache,
  };
  if (opts.length !== undefined) headers['Content-Length'] = String(opts.length);
  if (opts.namespace !== undefined) headers['OCI-Namespace'] = opts.namespace;
  if (opts.cache === 'stale') headers.Warning = '110 - "Response is Stale"';
  return headers;
}

/**
 * Writes a content answer straight to the Node response, header names as written here: a
 * Response object would lower-case them, and blob GETs (written this way for sendfile) and the
 * manifest fast path would then answer in another case than HEADs and the full handler.
 */
export function sendContent(res: ServerResponse, headers: Record<string, string>, body: Buffer | undefined): Response {
  res.writeHead(200, headers);
  res.end(body);
  return RESPONSE_ALREADY_SENT;
}
