// GET/HEAD /v2/<name>/blobs/<digest>. Bodies are written straight to the Node response; HEAD
// never starts a download.
import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { RangeNotSatisfiableError } from '../errors.ts';
import { parseDigest } from '../oci/digest.ts';
import { contentRange, parseRange, type ByteRange } from '../oci/range.ts';
import type { BlobService, BlobSource } from '../proxy/blob-service.ts';
import type { Route } from '../proxy/upstream-router.ts';
import type { Upstream } from '../proxy/upstream.ts';
import { contentHeaders, sendContent } from './registry-headers.ts';
import type { FileSender } from './file-sender.ts';
import { streamVerified } from './blob-passthrough.ts';
import { canHandOver, handOverFill } from './fill-handover.ts';

const BLOB_CONTENT_TYPE = 'application/octet-stream';
// Blobs are immutable: their name is their content.
const IMMUTABLE = 'public, max-age=31536000, immutable';

export async function headBlob(blobs: BlobService, route: Route<Upstream>, digestRef: string, res: ServerResponse): Promise<Response> {
  const digest = parseDigest(digestRef).value;
  const { size, cached } = await blobs.head(route.upstream, route.repository, digest);
  return blobHeadResponse(res, digest, size, cached ? 'hit' : 'miss', route.namespace);
}

export function blobHeadResponse(res: ServerResponse, digest: string, size: number | undefined, cache: 'hit' | 'miss', namespace: string | undefined): Response {
  return sendContent(res, blobHeaders(digest, size, cache, namespace), undefined);
}

/** What a blob response needs besides the bytes' source. */
export interface BlobRequest {
  readonly digest: string;
  readonly rangeHeader: string | undefined;
  readonly namespace: string | undefined;
  readonly files: FileSender;
  /** A hit thread handed the request over and can follow a fill's file itself (fill-handover.ts). */
  readonly handOver?: boolean;
}

export async function getBlob(
  blobs: BlobService,
  files: FileSender,
  route: Route<Upstream>,
  digestRef: string,
  rangeHeader: string | undefined,
  res: ServerResponse,
  handOver = false,
): Promise<Response> {
  const digest = parseDigest(digestRef).value;
  const source = await blobs.open(route.upstream, route.repository, digest, { rangeHeader });
  return sendBlob(res, source, { digest, rangeHeader, namespace: route.namespace, files, handOver });
}

/** Writes a blob from wherever it comes (disk, a running fill, the upstream) to the response. */
export function sendBlob(res: ServerResponse, source: BlobSource, request: BlobRequest): Response {
  const { digest, rangeHeader, namespace } = request;
  if (source.kind === 'redirect') {
    // The presigned URL expires: neither it nor this answer may be cached.
    res.writeHead(307, { ...contentHeaders({ contentType: BLOB_CONTENT_TYPE, digest, length: 0, cache: 'redirect', namespace }), Location: source.url, 'Cache-Control': 'no-store' });
    res.end();
    return RESPONSE_ALREADY_SENT;
  }
  const size = sourceSize(source);
  let range: ByteRange | undefined;
  try {
    const honoured = size !== undefined && !(source.kind === 'passthrough' && source.wholeOnly);
    range = honoured ? selectRange(rangeHeader, size) : undefined;
  } catch (err) {
    if (source.kind === 'passthrough') source.body.destroy();
    throw err;
  }
  const cache = source.kind === 'cached' ? (source.filled ?? 'hit') : source.kind === 'passthrough' ? 'bypass' : source.joined ? 'coalesced' : 'miss';
  const length = range && size !== undefined ? range.end - range.start + 1 : size;
  const headers = blobHeaders(digest, length, cache, namespace);
  // Only the whole blob: a part would be a 206 whose bounds the hit thread would have to redo.
  if (source.kind === 'filling' && request.handOver && rangeHeader === undefined && canHandOver(source.fill)) {
    void handOverFill(res, source.fill, headers);
    return RESPONSE_ALREADY_SENT;
  }
  if (range && size !== undefined && length !== size) {
    headers['Content-Range'] = contentRange(range, size);
    res.writeHead(206, headers);
  } else {
    res.writeHead(200, headers);
  }
  // Headers go out now, not with the first body bytes: a waiter learns the size at once, and a
  // fill that fails before its first byte still reaches the client as a cut 200 body.
  if (source.kind !== 'cached') res.flushHeaders();
  const start = range?.start ?? 0;
  if (source.kind === 'cached') void request.files.send(res, source.info, { start, end: range?.end ?? size! - 1 });
  else if (source.kind === 'filling') void request.files.sendFill(res, source.fill, { start, end: range?.end });
  else void streamVerified(res, source.body, digest, { start, end: range?.end }, source.floor);
  return RESPONSE_ALREADY_SENT;
}

function sourceSize(source: Exclude<BlobSource, { kind: 'redirect' }>): number | undefined {
  if (source.kind === 'cached') return source.info.size;
  return source.kind === 'filling' ? source.fill.size : source.size;
}

function selectRange(header: string | undefined, size: number): ByteRange {
  const parsed = parseRange(header, size);
  if (parsed.kind === 'unsatisfiable') throw new RangeNotSatisfiableError(size);
  return parsed.kind === 'partial' ? parsed.range : { start: 0, end: size - 1 };
}

function blobHeaders(digest: string, length: number | undefined, cache: string, namespace: string | undefined): Record<string, string> {
  return {
    ...contentHeaders({ contentType: BLOB_CONTENT_TYPE, digest, length, cache, namespace }),
    'Accept-Ranges': 'bytes',
    'Cache-Control': IMMUTABLE,
  };
}
