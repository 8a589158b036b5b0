// Deterministic incompressible blobs of any size, streamed (AES-256-CTR keystream from the
// blob's name), so the benchmark needs no image files and never holds a large blob in memory.
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';

const CHUNK = 1 << 20;

export interface SyntheticBlob {
  readonly name: string;
  readonly size: number;
  readonly digest: string;
  stream(): Readable;
}

export async function syntheticBlob(name: string, size: number): Promise<SyntheticBlob> {
  const stream = () => keystream(name, size);
  const hash = createHash('sha256');
  for await (const chunk of stream()) hash.update(chunk as Buffer);
  return { name, size, digest: `sha256:${hash.digest('hex')}`, stream };
}

function keystream(name: string, size: number): Readable {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(name).digest(), Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  let left = size;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(CHUNK, left);
      left -= n;
      this.push(cipher.update(zeros.subarray(0, n)));
    },
  });
}
