// Where a blob missing from this replica's disk comes from, in order: the shared S3 store; the
// replica holding the digest's fill lease (streamed live from it); the upstream, under the lease
// this replica just won (or without one, when Redis is away or the holder cannot be reached:
// a second download, never a wrong byte). After a fill from the upstream the blob is published
// to S3, and only then is the lease released, so a replica that asks later finds it there.
import type { Logger } from 'pino';
import { UpstreamProtocolError, BlobUnknownError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { BlobInfo, BlobReader } from '../cache/blob-store.ts';
import { readChunks } from '../cache/blob-store.ts';
import type { SharedBlobs } from '../cache/shared-blobs.ts';
import type { FillBody } from '../proxy/blob-fill.ts';
import type { Upstream } from '../proxy/upstream.ts';
import { contentLength } from '../proxy/upstream-answer.ts';
import type { FillLeases, HeldLease } from './fill-leases.ts';
import type { PeerClient } from './peer-client.ts';
import { ResumingBody } from './resuming-body.ts';
import { digestOf, parseDigest } from '../oci/digest.ts';

export type FillOriginKind = 'upstream' | 's3' | 'peer';

/** A source of a blob's bytes other than this replica's own upstream request. */
export interface OtherOrigin {
  readonly kind: 's3' | 'peer';
  readonly body: FillBody;
  readonly size: number | undefined;
  /** Whether this replica should publish the blob once kept (the peer died: the upstream brought the rest). */
  publishes(): boolean;
}

export type OriginChoice = { readonly kind: 'other'; readonly origin: OtherOrigin } | { readonly kind: 'upstream'; readonly lease: HeldLease | undefined };

export const UPSTREAM_ALONE: OriginChoice = { kind: 'upstream', lease: undefined };

export class FillOrigins {
  readonly #shared: SharedBlobs | undefined;
  readonly #leases: FillLeases | undefined;
  readonly #peers: PeerClient | undefined;
  readonly #metrics: Metrics;
  readonly #log: Logger;

  constructor(deps: { shared?: SharedBlobs | undefined; leases?: FillLeases | undefined; peers?: PeerClient | undefined; metrics: Metrics; logger: Logger }) {
    this.#shared = deps.shared;
    this.#leases = deps.leases;
    this.#peers = deps.peers;
    this.#metrics = deps.metrics;
    this.#log = deps.logger;
  }

  /** Whether a blob missing here might still be found without the upstream (offline mode). */
  get sharesBlobs(): boolean {
    return this.#shared !== undefined;
  }

  /**
   * With blobs.s3.redirect, a presigned URL for a blob S3 holds (the repository confirmed first);
   * undefined when redirects are off or S3 does not have it.
   */
  async redirect(digest: string, confirm: () => Promise<void>): Promise<string | undefined> {
    const presign = this.#shared?.presign;
    if (!presign) return undefined;
    const info = await this.#shared!.stat(digest);
    if (!info || !plausibleSize(digest, info.size)) return undefined;
    await confirm();
    return presign(digest);
  }

  /** The blob on the shared store, if there is one and it answers. */
  sharedBlob(digest: string): Promise<BlobInfo | undefined> {
    return this.#shared?.stat(digest) ?? Promise.resolve(undefined);
  }

  /**
   * Where to fill the digest from. confirm: checks the repository may have the blob (links),
   * for origins that, unlike the upstream, do not answer per repository.
   */
  async choose(upstream: Upstream, repository: string, digest: string, confirm: () => Promise<void>): Promise<OriginChoice> {
    const fromShared = () => this.#fromShared(upstream, repository, digest, confirm);
    if (upstream.offline || !this.#leases || !this.#peers) return (await fromShared()) ?? UPSTREAM_ALONE;
    // The lease first, S3 second: while a replica publishes a blob it still holds the lease, so
    // nobody reads an object still being written from a store that shows it early (s3rver does).
    const claim = await this.#leases.claim(digest);
    if (claim.kind === 'unavailable') {
      this.#metrics.fillLeases.inc({ outcome: 'unavailable' });
      this.#log.debug({ digest, why: claim.why }, 'fill lease unavailable; filling alone');
      return (await fromShared()) ?? UPSTREAM_ALONE;
    }
    if (claim.kind === 'won') {
      const shared = await fromShared().catch(async (err: unknown) => {
        await claim.lease.release();
        throw err;
      });
      if (!shared) {
        this.#metrics.fillLeases.inc({ outcome: 'won' });
        return { kind: 'upstream', lease: claim.lease };
      }
      await claim.lease.release();
      return shared;
    }
    await confirm();
    const { holder } = claim;
    let peer;
    try {
      peer = await this.#peers.open(holder.url, digest);
    } catch (err) {
      this.#metrics.fillLeases.inc({ outcome: 'peer-failed' });
      this.#log.warn({ digest, holder: holder.replica, err: String(err) }, 'cannot read the blob from the replica filling it; fetching it from the upstream too');
      return UPSTREAM_ALONE;
    }
    if (!peer || !plausibleSize(digest, peer.size)) {
      peer?.body.destroy();
      // The holder no longer has it running or cached: it may have just published it.
      const now = await fromShared();
      this.#metrics.fillLeases.inc({ outcome: now ? 'followed' : 'peer-failed' });
      return now ?? UPSTREAM_ALONE;
    }
    this.#metrics.fillLeases.inc({ outcome: 'followed' });
    const body = this.#resumable(peer.body, peer.size, upstream, repository, digest, holder.replica);
    return { kind: 'other', origin: { kind: 'peer', body, size: peer.size, publishes: () => body.resumed } };
  }

  /** A fill kept its blob: counts where the bytes came from, and publishes it if it is ours to. */
  async filled(kind: FillOriginKind, info: BlobInfo, publish: boolean): Promise<void> {
    this.#metrics.fillBytes.inc({ origin: kind }, info.size);
    if (!publish || !this.#shared) return;
    const result = await this.#shared.publish(info);
    this.#metrics.sharedPublishes.inc({ result });
  }

  async #fromShared(upstream: Upstream, repository: string, digest: string, confirm: () => Promise<void>): Promise<OriginChoice | undefined> {
    const info = await this.#shared?.stat(digest);
    if (!info || !plausibleSize(digest, info.size)) return undefined;
    await confirm();
    const reader = await info.open().catch(() => undefined);
    if (!reader) return undefined;
    const first = readerBody(reader, info.size);
    // Offline, a read that breaks off stays broken; otherwise the upstream brings the rest.
    const body = upstream.offline ? first : this.#resumable(first, info.size, upstream, repository, digest, 's3');
    return { kind: 'other', origin: { kind: 's3', body, size: info.size, publishes: () => false } };
  }

  /** A body whose rest comes from the upstream should it break off (from: who failed, for the log). */
  #resumable(first: FillBody, size: number | undefined, upstream: Upstream, repository: string, digest: string, from: string): ResumingBody {
    return new ResumingBody(
      first,
      size,
      (offset) => resumeFromUpstream(upstream, repository, digest, offset, size),
      (offset, why) => {
        if (from !== 's3') this.#metrics.fillLeases.inc({ outcome: 'taken-over' });
        this.#log.warn({ digest, from, offset, err: String(why) }, 'the blob stopped coming from the replica filling it (or S3); the rest comes from the upstream');
      },
    );
  }
}

/**
 * Whether a size another store announces could be the blob's: an empty answer has no last byte
 * to hold back until verified, so it is believed only for the empty blob's digest.
 */
function plausibleSize(digest: string, size: number | undefined): boolean {
  return size !== 0 || digest === digestOf(Buffer.alloc(0), parseDigest(digest).algorithm);
}

/** A store reader as a fill body: destroying it closes the reader. */
function readerBody(reader: BlobReader, size: number): FillBody {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    void reader.close().catch(() => undefined);
  };
  return {
    async *[Symbol.asyncIterator]() {
      try {
        yield* readChunks(reader, size);
      } finally {
        close();
      }
    },
    destroy: close,
  };
}

/** The blob from offset to its end, from the upstream; refuses an answer that is not that part. */
async function resumeFromUpstream(upstream: Upstream, repository: string, digest: string, offset: number, size: number | undefined): Promise<FillBody> {
  const res = await upstream.get({ path: `/v2/${repository}/blobs/${digest}`, repository, range: `bytes=${offset}-`, notFound: () => new BlobUnknownError(digest) });
  const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
  const whole = range && range[3] !== '*' ? Number(range[3]) : undefined;
  const fits = res.status === 206 && range && Number(range[1]) === offset && (size === undefined || (whole === size && Number(range[2]) === size - 1));
  if (!fits) {
    res.body.destroy();
    throw new UpstreamProtocolError(upstream.name, `asked for ${digest} from byte ${offset}, got ${res.status} ${String(res.headers['content-range'] ?? '')}`);
  }
  const announced = contentLength(res.headers);
  if (announced !== undefined) upstream.received(announced);
  return res.body;
}
