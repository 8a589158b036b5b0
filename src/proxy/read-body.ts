// Reads a small upstream body (manifests, referrers, token responses) into one Buffer, refusing
// to grow past a limit in bytes so a hostile upstream cannot exhaust memory.
import { UpstreamProtocolError } from '../errors.ts';
import type { Upstream } from './upstream.ts';

type Body = AsyncIterable<Uint8Array> & { destroy(err?: Error): unknown };

export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`response body larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** The whole body, or BodyTooLargeError past limit bytes (the body is destroyed); stream errors pass through. */
export async function readBounded(body: Body, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > limit) {
      body.destroy();
      throw new BodyTooLargeError(limit);
    }
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/** readBounded for a service: too large is a protocol error, a broken body an unavailable upstream. */
export async function readUpstreamBody(upstream: Upstream, body: Body, limit: number): Promise<Buffer> {
  try {
    return await readBounded(body, limit);
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw new UpstreamProtocolError(upstream.name, err.message);
    // The connection broke, went idle or ran past its deadline mid-body.
    throw upstream.interruptedBody(err);
  }
}
