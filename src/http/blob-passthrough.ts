// Streams a blob straight from the upstream to the client when it cannot be cached. The bytes
// are still hashed: the last chunk is held back until the digest matches, so a corrupt
// upstream reaches the client only as a cut stream, as with cached fills. The body's rate floor
// learns what is read, and that waits for the client are not the upstream being slow.
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { parseDigest } from '../oci/digest.ts';
import type { UpstreamBody } from '../proxy/upstream-client.ts';
import type { RateFloor } from '../proxy/rate-floor.ts';
import { drained } from './follow-fill.ts';

export async function streamVerified(
  res: ServerResponse,
  body: UpstreamBody,
  digest: string,
  range: { start: number; end: number | undefined },
  floor?: RateFloor,
): Promise<void> {
  const { algorithm } = parseDigest(digest);
  const hash = createHash(algorithm);
  let offset = 0; // bytes of the blob seen so far
  let held: Buffer | undefined; // the newest chunk, released once the next one arrives
  const emit = async (chunk: Buffer, at: number) => {
    // The part of [at, at + chunk.length) inside the requested range.
    const from = Math.max(range.start - at, 0);
    const to = Math.min(chunk.length, range.end === undefined ? chunk.length : range.end + 1 - at);
    if (from < to && !res.write(chunk.subarray(from, to))) {
      floor?.pause();
      await drained(res);
      floor?.resume();
    }
  };
  try {
    for await (const part of body) {
      if (res.destroyed) return;
      const chunk = Buffer.from(part.buffer, part.byteOffset, part.byteLength);
      floor?.received(chunk.length);
      hash.update(chunk);
      if (held) await emit(held, offset - held.length);
      held = chunk;
      offset += chunk.length;
    }
    if (`${algorithm}:${hash.digest('hex')}` !== digest) throw new Error(`upstream bytes do not match ${digest}`);
    if (held) await emit(held, offset - held.length);
    res.end();
  } catch {
    body.destroy();
    res.destroy();
  } finally {
    floor?.stop();
  }
}
