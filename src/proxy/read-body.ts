// Reads a small upstream body (manifests, tag lists, referrers) into one Buffer, refusing to
// grow past a limit so a hostile upstream cannot exhaust memory.
import { UpstreamProtocolError } from '../errors.ts';
import type { Upstream } from './upstream.ts';

type Body = AsyncIterable<Uint8Array> & { destroy(err?: Error): unknown };

export async function readUpstreamBody(upstream: Upstream, body: Body, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += chunk.byteLength;
      if (size > limit) {
        body.destroy();
        throw new UpstreamProtocolError(upstream.name, `response body larger than ${limit} bytes`);
      }
      chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    }
  } catch (err) {
    if (err instanceof UpstreamProtocolError) throw err;
    // The connection broke, went idle or ran past its deadline mid-body.
    throw upstream.interruptedBody(err);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
