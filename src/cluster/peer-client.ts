// How a replica reads a blob from the replica holding its fill lease: a GET of the holder's
// peer endpoint (peer-route.ts), which streams the fill as it grows (its last byte held back
// until the holder verified the digest) or the blob once cached. Deadlines bound a peer that
// hangs; the caller verifies every byte again as it keeps them.
import { Agent, request } from 'undici';
import type { ClusterSecret } from './cluster-secret.ts';

export const PEER_BLOB_PATH = '/_wharf/peer/blobs/';

export interface PeerBody extends AsyncIterable<Uint8Array> {
  destroy(error?: Error): unknown;
}

export interface PeerBlob {
  readonly body: PeerBody;
  /** From the peer's Content-Length; undefined when the holder's upstream sent none. */
  readonly size: number | undefined;
}

export class PeerFailure extends Error {
  override readonly name = 'PeerFailure';
}

export class PeerClient {
  readonly #agent: Agent;
  readonly #secret: ClusterSecret;

  /** ca: PEM of the CAs that issue the replicas' certificates (cluster.caFile); unset: the system's. */
  constructor(secret: ClusterSecret, timeouts: { connectMs: number; headersMs: number; bodyIdleMs: number }, ca?: string) {
    this.#secret = secret;
    this.#agent = new Agent({
      connect: { timeout: timeouts.connectMs, ...(ca !== undefined && { ca }) },
      headersTimeout: timeouts.headersMs,
      bodyTimeout: timeouts.bodyIdleMs,
      keepAliveTimeout: 10_000,
    });
  }

  /** The blob from the peer at url; undefined when it has neither a fill nor the blob (any more). */
  async open(url: string, digest: string): Promise<PeerBlob | undefined> {
    let res;
    try {
      res = await request(`${url}${PEER_BLOB_PATH}${digest}`, { dispatcher: this.#agent, headers: { authorization: this.#secret.authorization } });
    } catch (err) {
      throw new PeerFailure(`peer ${url} did not answer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (res.statusCode === 404) {
      await res.body.dump().catch(() => undefined);
      return undefined;
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      throw new PeerFailure(`peer ${url} answered ${res.statusCode}`);
    }
    const length = res.headers['content-length'];
    const size = typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : undefined;
    return { body: res.body, size };
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
