// Starting one fill of a blob missing from the disk: where its bytes come from (S3, the replica
// filling it, the upstream: cluster/fill-origins.ts), a writer on the disk, and the task that
// writes it, keeps the books, publishes it to S3 and releases the fill lease. BlobService
// decides when a fill starts; this is how.
import type { Logger } from 'pino';
import { BlobUnknownError, UpstreamProtocolError } from '../errors.ts';
import type { BlobStore, BlobWriter } from '../cache/blob-store.ts';
import { digestOf, parseDigest } from '../oci/digest.ts';
import { BlobFill, runFill } from './blob-fill.ts';
import { blobMinRate, SlowBodyError } from './rate-floor.ts';
import type { CacheWriteGuard } from '../cache/cache-write-guard.ts';
import type { Upstream, UpstreamOk } from './upstream.ts';
import { contentLength } from './upstream-answer.ts';
import type { FillRegistry } from './fill-registry.ts';
import type { CacheAccounting } from '../cache/cache-accounting.ts';
import type { RepositoryLinks } from './repository-links.ts';
import { UPSTREAM_ALONE, type FillOrigins, type OtherOrigin } from '../cluster/fill-origins.ts';
import type { HeldLease } from '../cluster/fill-leases.ts';

export interface StartedFill {
  readonly fill: BlobFill;
  readonly task: Promise<void>;
}

/** The disk refused a new fill; carries the upstream response so its bytes are not wasted. */
export class CacheUnwritableError extends Error {
  readonly response: UpstreamOk;
  constructor(response: UpstreamOk, cause: unknown) {
    super('blob cache cannot write', { cause });
    this.response = response;
  }
}

/** The upstream's answer for a blob, refused when it is an empty body that cannot be the blob. */
export async function getUpstreamBlob(upstream: Upstream, repository: string, digest: string): Promise<UpstreamOk> {
  const res = await upstream.get({ path: `/v2/${repository}/blobs/${digest}`, repository, notFound: () => new BlobUnknownError(digest) });
  // An empty body has no last byte to hold back until verified: check it before answering.
  if (contentLength(res.headers) === 0 && digest !== digestOf(Buffer.alloc(0), parseDigest(digest).algorithm)) {
    await res.body.dump();
    throw new UpstreamProtocolError(upstream.name, `empty body for blob ${digest}`);
  }
  return res;
}

/** What starting a fill needs; BlobService takes the same, and hands them on. */
export interface FillStarterDeps {
  readonly store: BlobStore;
  readonly logger: Logger;
  readonly guard: CacheWriteGuard;
  readonly fills: FillRegistry;
  readonly accounting: CacheAccounting;
  readonly links: RepositoryLinks;
  /** Where else a missing blob may come from (S3, the replica filling it); unset: the upstream only. */
  readonly origins?: FillOrigins | undefined;
}

export class FillStarter {
  readonly #store: BlobStore;
  readonly #log: Logger;
  readonly #guard: CacheWriteGuard;
  readonly #fills: FillRegistry;
  readonly #accounting: CacheAccounting;
  readonly #links: RepositoryLinks;
  readonly #origins: FillOrigins | undefined;

  constructor(deps: FillStarterDeps) {
    this.#store = deps.store;
    this.#log = deps.logger;
    this.#guard = deps.guard;
    this.#fills = deps.fills;
    this.#accounting = deps.accounting;
    this.#links = deps.links;
    this.#origins = deps.origins;
  }

  /**
   * The fill's origin (S3, the replica filling it, or the upstream), a writer, and the task that
   * writes the fill and keeps the books.
   */
  async start(upstream: Upstream, repository: string, digest: string): Promise<StartedFill> {
    const choice = this.#origins
      ? await this.#origins.choose(upstream, repository, digest, () => this.#links.confirm(upstream, repository, digest, 'blob'))
      : UPSTREAM_ALONE;
    if (choice.kind === 'other') {
      const started = await this.#fillFromOther(choice.origin, upstream, digest);
      if (started) return started;
    }
    const lease = choice.kind === 'upstream' ? choice.lease : undefined;
    try {
      if (upstream.offline) throw new BlobUnknownError(digest);
      return await this.#fillFromUpstream(upstream, repository, digest, lease);
    } catch (err) {
      await lease?.release();
      throw err;
    }
  }

  /** A fill from S3 or another replica; undefined when the disk has no room for it (the upstream path passes it through). */
  async #fillFromOther(origin: OtherOrigin, upstream: Upstream, digest: string): Promise<StartedFill | undefined> {
    let writer: BlobWriter | undefined;
    if (await this.#guard.hasRoomFor(origin.size, this.#fills.bytesStillToWrite())) {
      writer = await this.#store.createWriter(digest).catch((err: unknown) => {
        this.#guard.recordWriteError(err);
        return undefined;
      });
    }
    if (!writer) {
      origin.body.destroy?.();
      return undefined;
    }
    const fill = new BlobFill(digest, origin.size, () => writer.openReader(), writer.localName);
    const task = runFill(fill, writer, origin.body, { minRate: blobMinRate(upstream.timeouts) }).then(async () => {
      if (fill.state === 'complete' && fill.info) {
        this.#accounting.committed(digest, fill.written);
        await this.#origins?.filled(origin.kind, fill.info, origin.publishes());
        return;
      }
      if (!this.#guard.recordWriteError(fill.error)) {
        this.#log.warn({ origin: origin.kind, digest, err: fill.error?.message }, 'blob fill failed; nothing cached');
      }
    });
    return { fill, task };
  }

  /** The upstream's answer, a writer, and the task that writes the fill, keeps the books and releases the lease. */
  async #fillFromUpstream(upstream: Upstream, repository: string, digest: string, lease: HeldLease | undefined): Promise<StartedFill> {
    const res = await getUpstreamBlob(upstream, repository, digest);
    // The upstream serves the blob for this repository: the repository references it.
    this.#links.noteBlob({ upstream: upstream.name, repository }, digest);
    const size = contentLength(res.headers);
    if (!(await this.#guard.hasRoomFor(size, this.#fills.bytesStillToWrite()))) {
      throw new CacheUnwritableError(res, Object.assign(new Error('not enough disk space'), { code: 'ENOSPC' }));
    }
    let writer: BlobWriter;
    try {
      writer = await this.#store.createWriter(digest);
    } catch (err) {
      if (this.#guard.recordWriteError(err)) throw new CacheUnwritableError(res, err);
      res.body.destroy();
      throw err;
    }
    const fill = new BlobFill(digest, size, () => writer.openReader(), writer.localName);
    const task = runFill(fill, writer, res.body, { minRate: blobMinRate(upstream.timeouts) })
      .then(async () => {
        upstream.received(fill.written);
        if (fill.state === 'complete' && fill.info) {
          this.#accounting.committed(digest, fill.written);
          this.#log.debug({ upstream: upstream.name, digest, size: fill.written }, 'blob cached');
          // Published before the lease goes: a replica that asks after it finds the blob on S3.
          await this.#origins?.filled('upstream', fill.info, true);
          return;
        }
        if (fill.error instanceof SlowBodyError) {
          upstream.tooSlow(fill.error.message);
          return;
        }
        // A disk error mid-fill sends the next requests around the cache; the waiters were cut.
        if (!this.#guard.recordWriteError(fill.error)) {
          this.#log.warn({ upstream: upstream.name, digest, err: fill.error?.message }, 'blob fill failed; nothing cached');
        }
      })
      .finally(() => lease?.release());
    return { fill, task };
  }
}

