// threads > 1: a hit thread's client of a running fill gets the blob from the hit thread itself,
// sent from the fill's file (threads/followed-fill.ts), not through this thread and loopback:
// there every forwarded byte cost the hit thread ~2 bytes of short-lived buffers, and a herd of
// forwarded followers ~30 MB of garbage before V8 collected it. This thread, which runs the
// fill, answers such a request with the real status and headers, the length moved aside, the
// name of the fill's temp file, and as body only the fill's progress:
//   `<bytes readable>\n` as they grow, then `end <length>\n` once the digest verified.
// A failed fill cuts this answer: the hit thread cuts its client, as this thread cuts its own.
import type { ServerResponse } from 'node:http';
import type { BlobFill } from '../proxy/blob-fill.ts';
import { drained } from './follow-fill.ts';

export const FILL_HANDOVER_HEADERS = {
  /** The temp file's name in the blob store (BlobWriter.localName), never a path. */
  file: 'x-wharf-fill-file',
  /** The blob's Content-Length, which the hit thread restores: this answer's body is the progress. */
  length: 'x-wharf-fill-length',
} as const;

export const FILL_END = 'end ';

// A key on the response object itself: nothing is kept anywhere else.
const HANDED_OVER_BYTES = Symbol('wharf.handedOverBytes');

interface MarkedResponse extends ServerResponse {
  [HANDED_OVER_BYTES]?: number;
}

/** A fill a hit thread can follow itself: a local file, and a length to announce. */
export function canHandOver(fill: BlobFill): boolean {
  return fill.localName !== undefined && fill.size !== undefined;
}

/**
 * The blob bytes this answer gave a hit thread to send, for the access log and metrics (the
 * socket's count is only the progress lines); undefined for any other answer. It is what the
 * hit thread was cleared to send: the whole blob once the digest verified, else what was
 * readable when the fill failed or the hit thread hung up (its client left). Which part of that
 * its client then took only the hit thread sees; this thread counts what it served, once.
 */
export function handedOverBytes(res: ServerResponse): number | undefined {
  return (res as MarkedResponse)[HANDED_OVER_BYTES];
}

/** Answers with the blob's head and the fill's progress until it verified (or failed: cut). */
export async function handOverFill(res: ServerResponse, fill: BlobFill, headers: Record<string, string>): Promise<void> {
  const marked = res as MarkedResponse;
  const { 'Content-Length': length, ...rest } = headers;
  marked[HANDED_OVER_BYTES] = 0;
  res.writeHead(200, { ...rest, [FILL_HANDOVER_HEADERS.length]: length ?? String(fill.size), [FILL_HANDOVER_HEADERS.file]: fill.localName! });
  res.flushHeaders();
  const closed = new Promise<void>((resolve) => res.once('close', resolve));
  let told = -1;
  for (;;) {
    if (res.destroyed) return;
    if (fill.state === 'failed') {
      res.destroy();
      return;
    }
    if (fill.ended) {
      marked[HANDED_OVER_BYTES] = fill.written;
      res.end(`${FILL_END}${fill.written}\n`);
      return;
    }
    const readable = fill.readable;
    if (readable > told) {
      told = readable;
      marked[HANDED_OVER_BYTES] = readable;
      // Only the latest figure matters: while loopback is full, the ones in between are skipped.
      if (!res.write(`${readable}\n`)) await drained(res);
      continue;
    }
    await Promise.race([fill.changed(), closed]);
  }
}
