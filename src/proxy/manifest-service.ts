// Manifest policy. By digest: immutable, served from the store once cached. By tag: served from
// the store within the freshness window; after it, revalidated with a HEAD (free on Docker Hub)
// and fetched by digest only when the digest changed and is not cached. When the upstream has
// no answer (network, 5xx, 429) and a copy is cached, the copy is served and marked stale.
// A cached manifest is served by digest under a repository only if the repository is linked to
// it (repository-links.ts); every manifest fetched or resolved for a repository is linked to it.
import type { Logger } from 'pino';
import { ManifestUnknownError, UpstreamProtocolError } from '../errors.ts';
import type { ManifestStore, RepoKey, StoredManifest } from '../cache/manifest-store.ts';
import type { ManifestMemory } from '../cache/memory-cached-manifest-store.ts';
import { digestOf, looksLikeDigest, parseDigest } from '../oci/digest.ts';
import { UPSTREAM_MANIFEST_ACCEPT } from '../oci/media-types.ts';
import { checkManifest } from '../oci/manifest-check.ts';
import { isValidTag } from '../oci/grammar.ts';
import type { Upstream, UpstreamOk } from './upstream.ts';
import type { ConfiguredUpstream } from './upstream-router.ts';
import { HeadNotSupportedError, headerValue } from './upstream-answer.ts';
import { readUpstreamBody } from './read-body.ts';
import { TagFreshness, type TagFreshnessRule } from './tag-freshness.ts';
import { SingleFlight } from './single-flight.ts';
import { upstreamOrFallback } from './stale-fallback.ts';
import { RepositoryLinks } from './repository-links.ts';

/**
 * hit: from the store; miss: fetched for this request; coalesced: joined a fetch another request
 * started; revalidated: upstream confirmed the cached digest; stale: upstream had no answer.
 */
export type ManifestCacheResult = 'hit' | 'miss' | 'coalesced' | 'revalidated' | 'stale';

export interface ManifestResult {
  readonly manifest: StoredManifest;
  readonly cache: ManifestCacheResult;
}

/** Manifests larger than this are refused (the distribution spec suggests 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export class ManifestService {
  readonly #store: ManifestStore;
  readonly #memory: ManifestMemory | undefined;
  readonly #links: RepositoryLinks;
  readonly #referrers: { noteManifest(repo: RepoKey, manifest: StoredManifest): void } | undefined;
  readonly #freshness: TagFreshness;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #byDigest = new SingleFlight<StoredManifest>();
  readonly #byTag = new SingleFlight<ManifestResult>();

  /** memory: the store's in-memory layer, when it has one (for cachedInMemory). */
  /** freshness: per-pattern tag freshness (cache.tagFreshness); unset, every tag lasts tagTtlSeconds. */
  constructor(deps: {
    store: ManifestStore;
    memory?: ManifestMemory;
    links?: RepositoryLinks;
    /** Told of every manifest stored, to index those with a subject (referrers-service.ts). */
    referrers?: { noteManifest(repo: RepoKey, manifest: StoredManifest): void } | undefined;
    tagTtlSeconds: number;
    freshness?: TagFreshness;
    logger: Logger;
    now?: () => number;
  }) {
    this.#store = deps.store;
    this.#memory = deps.memory;
    this.#links = deps.links ?? new RepositoryLinks(deps.store, deps.logger);
    this.#referrers = deps.referrers;
    this.#freshness = deps.freshness ?? new TagFreshness(deps.tagTtlSeconds);
    this.#now = deps.now ?? Date.now;
    this.#log = deps.logger;
  }

  /** The service as the config sets it, over a store with its memory layer: the same for every thread. */
  static fromConfig(
    config: { readonly cache: { readonly tagTtlSeconds: number; readonly tagFreshness: readonly TagFreshnessRule[] } },
    store: ManifestStore & ManifestMemory,
    logger: Logger,
    links = new RepositoryLinks(store, logger),
    referrers?: { noteManifest(repo: RepoKey, manifest: StoredManifest): void },
  ): ManifestService {
    const { tagTtlSeconds, tagFreshness } = config.cache;
    return new ManifestService({ store, memory: store, links, referrers, tagTtlSeconds, freshness: new TagFreshness(tagTtlSeconds, tagFreshness), logger });
  }

  async get(upstream: Upstream, repository: string, reference: string): Promise<ManifestResult> {
    if (looksLikeDigest(reference)) return this.#getByDigest(upstream, repository, parseDigest(reference).value);
    // A reference that is neither a digest nor a tag names nothing: 404, as the spec's tests expect.
    if (!isValidTag(reference)) throw new ManifestUnknownError(reference);
    return this.#getByTag(upstream, repository, reference);
  }

  /**
   * The manifest when the cache alone may answer (by digest: stored; by tag: fresh, or any age
   * offline), else undefined. Never asks the upstream; hit threads answer with this.
   */
  async cached(upstream: ConfiguredUpstream, repository: string, reference: string): Promise<StoredManifest | undefined> {
    const repo = { upstream: upstream.name, repository };
    if (looksLikeDigest(reference)) {
      const digest = parseDigest(reference).value;
      return (await this.#links.has(repo, digest)) ? this.#store.getManifest(digest) : undefined;
    }
    if (!isValidTag(reference)) return undefined;
    const record = await this.#store.getTag(repo, reference);
    if (!record || !(this.#isFresh(repo, reference, record) || upstream.offline)) return undefined;
    return this.#store.getManifest(record.digest);
  }

  /** cached(), from memory alone: it never waits on the store, so a miss costs nothing. */
  cachedInMemory(upstream: ConfiguredUpstream, repository: string, reference: string): StoredManifest | undefined {
    if (!this.#memory) return undefined;
    const repo = { upstream: upstream.name, repository };
    if (looksLikeDigest(reference)) {
      const digest = parseDigest(reference).value;
      return this.#memory.peekLink(repo, digest) ? this.#memory.peekManifest(digest) : undefined;
    }
    if (!isValidTag(reference)) return undefined;
    const record = this.#memory.peekTag(repo, reference);
    if (!record || !(this.#isFresh(repo, reference, record) || upstream.offline)) return undefined;
    return this.#memory.peekManifest(record.digest);
  }

  #isFresh(repo: RepoKey, tag: string, record: { readonly fetchedAt: number }): boolean {
    return this.#now() - record.fetchedAt < this.#freshness.ttlMs(repo.upstream, repo.repository, tag);
  }

  async #getByDigest(upstream: Upstream, repository: string, digest: string): Promise<ManifestResult> {
    const cached = await this.#store.getManifest(digest);
    if (cached) {
      await this.#links.confirm(upstream, repository, digest, 'manifest');
      return { manifest: cached, cache: 'hit' };
    }
    if (upstream.offline) throw new ManifestUnknownError(digest);
    // Per repository: a fetch for one repository proves nothing for another.
    const { result, shared } = this.#byDigest.run(`${upstream.name}/${repository}@${digest}`, () => this.#fetchManifest(upstream, repository, digest, digest));
    return { manifest: await result, cache: shared ? 'coalesced' : 'miss' };
  }

  async #getByTag(upstream: Upstream, repository: string, tag: string): Promise<ManifestResult> {
    const repo: RepoKey = { upstream: upstream.name, repository };
    const record = await this.#store.getTag(repo, tag);
    const cached = record ? await this.#store.getManifest(record.digest) : undefined;
    const fresh = record !== undefined && this.#isFresh(repo, tag, record);
    // Offline, the cache is the registry of record: its tags never expire.
    if (cached && (fresh || upstream.offline)) return { manifest: cached, cache: 'hit' };
    if (upstream.offline) throw new ManifestUnknownError(tag);
    const flight = this.#byTag.run(`${upstream.name}/${repository}:${tag}`, () => this.#revalidateTag(upstream, repo, tag, cached));
    if (!cached) {
      const result = await flight.result;
      return flight.shared && result.cache === 'miss' ? { ...result, cache: 'coalesced' } : result;
    }
    const outcome = await upstreamOrFallback(flight, upstream.staleAfterMs);
    if (outcome.ok) return outcome.value;
    upstream.servedStale('manifest');
    this.#log.debug({ upstream: upstream.name, repository, tag, why: outcome.why }, 'serving cached tag stale');
    return { manifest: cached, cache: 'stale' };
  }

  async #revalidateTag(upstream: Upstream, repo: RepoKey, tag: string, cached: StoredManifest | undefined): Promise<ManifestResult> {
    const result = await this.#resolveTagUpstream(upstream, repo.repository, tag, cached);
    await this.#store.putTag(repo, tag, { digest: result.manifest.digest, mediaType: result.manifest.mediaType, fetchedAt: this.#now() });
    return result;
  }

  async #resolveTagUpstream(upstream: Upstream, repository: string, tag: string, cached: StoredManifest | undefined): Promise<ManifestResult> {
    let head: UpstreamOk | undefined;
    try {
      head = await upstream.head({
        path: `/v2/${repository}/manifests/${tag}`,
        repository,
        accept: UPSTREAM_MANIFEST_ACCEPT,
        small: true,
        cachedCopy: cached !== undefined,
        notFound: () => new ManifestUnknownError(tag),
      });
      await head.body.dump();
    } catch (err) {
      // Some registries do not answer HEAD for manifests; GET is the fallback clients use too.
      if (!(err instanceof HeadNotSupportedError)) throw err;
    }
    const digest = head ? headerValue(head.headers['docker-content-digest']) : undefined;
    if (!digest || !looksLikeDigest(digest)) {
      return { manifest: await this.#fetchManifest(upstream, repository, tag, undefined), cache: 'miss' };
    }
    const known = cached?.digest === digest ? cached : await this.#store.getManifest(digest);
    // The upstream says the repository's tag names it: the repository references it now.
    if (known && known !== cached) this.#links.noteManifest({ upstream: upstream.name, repository }, known);
    // A tag we never had counts as a miss even when its manifest is cached under another tag.
    if (known) return { manifest: known, cache: cached ? 'revalidated' : 'miss' };
    const { result } = this.#byDigest.run(`${upstream.name}/${repository}@${digest}`, () => this.#fetchManifest(upstream, repository, digest, digest));
    return { manifest: await result, cache: 'miss' };
  }

  /**
   * GETs a manifest, checks that it is one (type and shape) and that its digest is the digest of
   * its bytes, and stores it. Nothing else is cached: the digest a record is stored under is
   * always computed here, never taken from the upstream. expectedDigest: by-digest fetches.
   */
  async #fetchManifest(upstream: Upstream, repository: string, reference: string, expectedDigest: string | undefined): Promise<StoredManifest> {
    const res = await upstream.get({
      path: `/v2/${repository}/manifests/${reference}`,
      repository,
      accept: UPSTREAM_MANIFEST_ACCEPT,
      small: true,
      notFound: () => new ManifestUnknownError(reference),
    });
    const body = await readUpstreamBody(upstream, res.body, MAX_MANIFEST_BYTES);
    upstream.received(body.length);
    const refuse = (why: string, detail: Record<string, string> = {}) => {
      this.#log.error({ upstream: upstream.name, repository, reference, why, ...detail }, 'upstream manifest refused; not cached');
      return new UpstreamProtocolError(upstream.name, why);
    };
    const check = checkManifest(headerValue(res.headers['content-type']), body);
    if (!check.ok) throw refuse(`not a manifest wharf can cache: ${check.why}`);
    const announced = headerValue(res.headers['docker-content-digest']);
    const claimed = expectedDigest ?? (announced && looksLikeDigest(announced) ? announced : undefined);
    const algorithm = claimed ? digestAlgorithm(claimed) : 'sha256';
    if (!algorithm) throw refuse(`unsupported digest ${claimed}`);
    const digest = digestOf(body, algorithm);
    if (claimed && digest !== claimed) throw refuse(`manifest digest mismatch: expected ${claimed}, got ${digest}`, { claimed: claimed, actual: digest });
    const manifest: StoredManifest = { digest, mediaType: check.mediaType, body };
    await this.#store.putManifest(manifest);
    this.#links.noteManifest({ upstream: upstream.name, repository }, manifest);
    this.#referrers?.noteManifest({ upstream: upstream.name, repository }, manifest);
    return manifest;
  }
}

/** The algorithm of a digest wharf can verify, else undefined. */
function digestAlgorithm(digest: string): 'sha256' | 'sha512' | undefined {
  try {
    return parseDigest(digest).algorithm;
  } catch {
    return undefined;
  }
}
