// Blob policy: serve from disk when cached (or, with blobs.s3.redirect, send the client to S3 for
// a blob S3 holds); otherwise start (or join) the single fill for the digest, from S3, the
// replica filling it or the upstream (fill-starter.ts). The fill belongs to no client: it runs to the end even if every client leaves. When
// the disk cannot take the blob, the upstream's bytes pass through to the client uncached.
// Upstream bodies slower than the upstream's blob minimum rate are cut. With verifiedRangesOnly,
// a Range that would be answered with part of an unverified blob waits for the verified whole.
// A cached blob, or another repository's running fill, is served under a repository only if
// the repository is linked to the digest or its upstream confirms it (repository-links.ts).
import { BlobUnknownError, UpstreamProtocolError, UpstreamUnavailableError, type RegistryError } from '../errors.ts';
import { DigestMismatchError, type BlobInfo, type BlobStore } from '../cache/blob-store.ts';
import { parseRange } from '../oci/range.ts';
import type { BlobFill } from './blob-fill.ts';
import { blobMinRate, rateFloor, type RateFloor } from './rate-floor.ts';
import { CacheWriteGuard, diskErrorCode } from '../cache/cache-write-guard.ts';
import type { Upstream, UpstreamOk } from './upstream.ts';
import { contentLength } from './upstream-answer.ts';
import type { UpstreamBody } from './upstream-client.ts';
import type { FillRegistry } from './fill-registry.ts';
import type { CacheAccounting } from '../cache/cache-accounting.ts';
import type { RepositoryLinks } from './repository-links.ts';
import type { FillOrigins } from '../cluster/fill-origins.ts';
import { CacheUnwritableError, FillStarter, getUpstreamBlob, type FillStarterDeps } from './fill-starter.ts';

export type BlobSource =
  /** filled: this request waited for a fill that stored the blob just now (a miss, not a hit). */
  | { readonly kind: 'cached'; readonly info: BlobInfo; readonly filled?: 'miss' | 'coalesced' }
  | { readonly kind: 'filling'; readonly fill: BlobFill; readonly joined: boolean }
  /** blobs.s3.redirect: the client gets the blob from S3 itself, at this presigned URL. */
  | { readonly kind: 'redirect'; readonly url: string }
  /**
   * Straight from the upstream, not cached: the reader must verify and consume or destroy it.
   * floor: the reader tells it the bytes it reads and when it holds the body back; it cuts a
   * body below the upstream's minimum rate. wholeOnly: answer with the whole blob even for a
   * Range (a part cannot be verified before it is sent).
   */
  | {
      readonly kind: 'passthrough';
      readonly body: UpstreamBody;
      readonly size: number | undefined;
      readonly floor: RateFloor | undefined;
      readonly wholeOnly?: boolean;
    };

export interface BlobOpenOptions {
  /** The client's Range header: with verifiedRangesOnly, a part of an unverified blob waits. */
  readonly rangeHeader?: string | undefined;
}

export interface BlobHead {
  readonly size: number | undefined;
  readonly cached: boolean;
}

export class BlobService {
  readonly #store: BlobStore;
  /** Free space: whether a fill fits, and when to go around the cache. */
  readonly #guard: CacheWriteGuard;
  readonly #fills: FillRegistry;
  readonly #accounting: CacheAccounting;
  readonly #links: RepositoryLinks;
  readonly #verifiedRangesOnly: boolean;
  /** Where else a missing blob may come from (S3, the replica filling it); unset: the upstream only. */
  readonly #origins: FillOrigins | undefined;
  readonly #starter: FillStarter;

  constructor(
    deps: FillStarterDeps & {
      /** cache.verifiedRangesOnly: answer a Range of an uncached blob only from the verified whole. */
      readonly verifiedRangesOnly?: boolean;
    },
  ) {
    this.#origins = deps.origins;
    this.#verifiedRangesOnly = deps.verifiedRangesOnly ?? false;
    this.#store = deps.store;
    this.#guard = deps.guard;
    this.#fills = deps.fills;
    this.#accounting = deps.accounting;
    this.#links = deps.links;
    this.#starter = new FillStarter(deps);
  }

  async open(upstream: Upstream, repository: string, digest: string, options: BlobOpenOptions = {}): Promise<BlobSource> {
    const source = await this.#open(upstream, repository, digest);
    // S3 holds only verified blobs: a redirect's Range is always answered from verified bytes.
    if (!this.#verifiedRangesOnly || source.kind === 'cached' || source.kind === 'redirect') return source;
    const size = source.kind === 'filling' ? source.fill.size : source.size;
    if (!sendsPartOfBlob(options.rangeHeader, size)) return source;
    if (source.kind === 'passthrough') return { ...source, wholeOnly: true };
    return this.#whenVerified(source.fill, source.joined, upstream, repository, digest);
  }

  async #open(upstream: Upstream, repository: string, digest: string): Promise<BlobSource> {
    const inFlight = this.#fills.get(digest);
    if (inFlight) return this.#join(inFlight, upstream, repository, digest);
    const info = await this.#store.stat(digest);
    if (info) {
      await this.#links.confirm(upstream, repository, digest, 'blob');
      this.#accounting.used(digest);
      return { kind: 'cached', info };
    }
    // Only a blob already on S3 is redirected, never one still filling (handled above).
    const redirect = await this.#origins?.redirect(digest, () => this.#links.confirm(upstream, repository, digest, 'blob'));
    if (redirect) return { kind: 'redirect', url: redirect };
    if (upstream.offline && !this.#origins?.sharesBlobs) throw new BlobUnknownError(digest);
    // Re-check after the await: another request may have started the fill meanwhile.
    const raced = this.#fills.get(digest);
    if (raced) return this.#join(raced, upstream, repository, digest);
    if (this.#guard.bypassing) return this.#passThrough(upstream, repository, digest, 'disk-unwritable');
    try {
      return { kind: 'filling', fill: await this.#fills.start(digest, () => this.#starter.start(upstream, repository, digest)), joined: false };
    } catch (err) {
      if (!(err instanceof CacheUnwritableError)) throw err;
      this.#guard.countBypass(diskErrorCode(err.cause) ?? 'write-error');
      return this.#passThroughSource(upstream, err.response);
    }
  }

  /**
   * The blob once the fill has verified and stored it, or the error that says why not. Waits for
   * the fill's bookkeeping too, so that a disk failure has already sent requests around the cache.
   */
  async #whenVerified(fill: BlobFill, joined: boolean, upstream: Upstream, repository: string, digest: string): Promise<BlobSource> {
    await this.#fills.finished(fill);
    if (fill.state === 'complete' && fill.info) return { kind: 'cached', info: fill.info, filled: joined ? 'coalesced' : 'miss' };
    // The disk failed under the fill: like any request now, this one goes around the cache.
    if (diskErrorCode(fill.error) && this.#guard.bypassing) return this.#passThrough(upstream, repository, digest, 'disk-unwritable', true);
    throw fillFailure(upstream.name, fill.error);
  }

  /** Size of a blob without downloading it: disk, a running fill, or an upstream HEAD. */
  async head(upstream: Upstream, repository: string, digest: string): Promise<BlobHead> {
    const info = await this.#store.stat(digest);
    if (info) {
      await this.#links.confirm(upstream, repository, digest, 'blob');
      return { size: info.size, cached: true };
    }
    const inFlight = this.#fills.get(digest);
    if (inFlight) {
      const fill = await inFlight.catch(() => undefined);
      if (fill?.size !== undefined && (await this.#links.has({ upstream: upstream.name, repository }, digest))) return { size: fill.size, cached: false };
    }
    const shared = await this.#origins?.sharedBlob(digest);
    if (shared) {
      await this.#links.confirm(upstream, repository, digest, 'blob');
      return { size: shared.size, cached: true };
    }
    if (upstream.offline) throw new BlobUnknownError(digest);
    const res = await upstream.head({ path: `/v2/${repository}/blobs/${digest}`, repository, notFound: () => new BlobUnknownError(digest) });
    await res.body.dump();
    return { size: contentLength(res.headers), cached: false };
  }

  /**
   * For another replica following this one's fill (peer-route.ts): the running fill or the
   * cached blob, never a new fill; undefined when this replica has neither.
   */
  async openForPeer(digest: string): Promise<BlobSource | undefined> {
    const inFlight = this.#fills.get(digest);
    const fill = inFlight && (await inFlight.catch(() => undefined));
    if (fill && fill.state !== 'failed') return { kind: 'filling', fill, joined: true };
    const info = await this.#store.stat(digest);
    if (!info) return undefined;
    this.#accounting.used(digest);
    return { kind: 'cached', info };
  }

  /**
   * Starts a fill of a blob no client asked for yet (prefetch-service.ts), unless it is cached,
   * filling, or the disk cannot take it. Resolves once the fill has started (or will not).
   */
  async prefetch(upstream: Upstream, repository: string, digest: string): Promise<'started' | 'cached' | 'skipped'> {
    if (this.#fills.get(digest) || (await this.#store.stat(digest))) return 'cached';
    if (this.#guard.bypassing || (upstream.offline && !this.#origins?.sharesBlobs) || this.#fills.get(digest)) return 'skipped';
    try {
      await this.#fills.start(digest, () => this.#starter.start(upstream, repository, digest));
      return 'started';
    } catch (err) {
      // The disk could not take it: nobody is waiting for these bytes.
      if (err instanceof CacheUnwritableError) err.response.body.destroy();
      return 'skipped';
    }
  }

  /** Resolves when the digest's running fill (if any) has ended, however it ended. */
  async whenFilled(digest: string): Promise<void> {
    const fill = await this.#fills.get(digest)?.catch(() => undefined);
    if (fill) await this.#fills.finished(fill);
  }

  /** Waits for running fills to settle (used at shutdown and by tests). */
  settled(): Promise<void> {
    return this.#fills.settled();
  }

  async #join(fill: Promise<BlobFill>, upstream: Upstream, repository: string, digest: string): Promise<BlobSource> {
    try {
      const running = await fill;
      // The fill's own repository was linked when its upstream answered; any other must be confirmed.
      await this.#links.confirm(upstream, repository, digest, 'blob');
      return { kind: 'filling', fill: running, joined: true };
    } catch (err) {
      // The fill we joined could not write to disk: fetch our own copy to pass through.
      if (err instanceof CacheUnwritableError) return this.#passThrough(upstream, repository, digest, 'disk-unwritable');
      throw err;
    }
  }

  async #passThrough(upstream: Upstream, repository: string, digest: string, reason: string, wholeOnly = false): Promise<BlobSource> {
    const res = await getUpstreamBlob(upstream, repository, digest);
    this.#guard.countBypass(reason);
    return this.#passThroughSource(upstream, res, wholeOnly);
  }

  #passThroughSource(upstream: Upstream, res: UpstreamOk, wholeOnly = false): BlobSource {
    const size = contentLength(res.headers);
    // Counted as announced: the body is the reader's to consume.
    if (size !== undefined) upstream.received(size);
    const { body } = res;
    const floor = rateFloor(blobMinRate(upstream.timeouts), (err) => {
      if (body.destroyed) return;
      upstream.tooSlow(err.message);
      body.destroy(err);
    });
    // However the body ends (read to the end, cut, or destroyed unread), its floor ends with it.
    if (floor) body.once('close', () => floor.stop());
    return { kind: 'passthrough', body, size, floor, wholeOnly };
  }

}

/**
 * Whether answering this Range from a blob not yet verified would send part of it (a 206): the
 * whole blob, in any form, keeps its last byte until verified, so it cannot complete wrong.
 */
function sendsPartOfBlob(rangeHeader: string | undefined, size: number | undefined): boolean {
  // Without a size the Range is not honoured: the whole blob is sent.
  if (rangeHeader === undefined || size === undefined) return false;
  const parsed = parseRange(rangeHeader, size);
  return parsed.kind === 'partial' && parsed.range.end - parsed.range.start + 1 < size;
}

/** What a client waiting for a verified blob is told when its fill failed. */
function fillFailure(upstream: string, error: Error | undefined): RegistryError {
  if (error instanceof DigestMismatchError) return new UpstreamProtocolError(upstream, 'blob bytes do not match their digest');
  return new UpstreamUnavailableError(upstream, `blob download failed: ${error?.message ?? 'unknown error'}`);
}
