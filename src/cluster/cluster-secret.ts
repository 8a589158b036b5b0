// The secret replicas show each other on the peer endpoint: read from cluster.secretFile, kept
// only as what a presented one is compared with (in constant time, by hash).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';

const MIN_SECRET_CHARS = 32;

export class ClusterSecret {
  readonly #header: string;
  readonly #expected: Buffer;

  private constructor(secret: string) {
    this.#header = `Bearer ${secret}`;
    this.#expected = hashOf(this.#header);
  }

  static async fromFile(path: string): Promise<ClusterSecret> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new Error(`cluster.secretFile ${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    // Secret files usually end in a newline that is not part of the secret.
    const secret = text.replace(/[\r\n]+$/, '');
    if (secret.length < MIN_SECRET_CHARS || /\s/.test(secret)) {
      throw new Error(`cluster.secretFile ${path}: expected one line of at least ${MIN_SECRET_CHARS} characters without spaces (e.g. openssl rand -hex 32)`);
    }
    return new ClusterSecret(secret);
  }

  /** The Authorization header a replica sends its peers. */
  get authorization(): string {
    return this.#header;
  }

  /** Whether a request's Authorization header carries the secret. */
  admits(authorization: string | undefined): boolean {
    return authorization !== undefined && timingSafeEqual(hashOf(authorization), this.#expected);
  }
}

function hashOf(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
