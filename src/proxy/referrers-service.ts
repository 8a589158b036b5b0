// Referrers (OCI distribution 1.1): the manifests that name a digest as their `subject`.
//
// One answer whatever the upstream can do. wharf keeps a record per (upstream, repository,
// subject digest) in the manifest store holding
//   - the upstream's list, unfiltered: from its referrers API when it has one, else from its
//     referrers tag (`sha256-<hex>`, the tag schema clients push to registries without the API);
//   - the manifests with that subject that wharf itself fetched and stored for the repository.
// The answer is their union (the upstream's first, by digest), filtered here by `artifactType`
// (so OCI-Filters-Applied is always wharf's own word). The upstream's list is fresh for
// cache.tagTtlSeconds like a tag, then asked again; while the upstream cannot answer (network,
// 5xx, 429, or slower than the stale budget) the record is served stale. Offline, the record is
// the answer. An upstream without the API (404, 400 or 405 on /referrers/) is asked for the tag.
import type { Logger } from 'pino';
import { ManifestUnknownError, ReferrersUnsupportedError, UpstreamProtocolError } from '../errors.ts';
import type { ManifestStore, ReferrerDescriptor, ReferrersRecord, RepoKey, StoredManifest } from '../cache/manifest-store.ts';
import { checkManifest } from '../oci/manifest-check.ts';
import { parseDigest } from '../oci/digest.ts';
import { MediaType } from '../oci/media-types.ts';
import type { Upstream } from './upstream.ts';
import { headerValue, UnexpectedStatusError } from './upstream-answer.ts';
import { readUpstreamBody } from './read-body.ts';
import { SingleFlight } from './single-flight.ts';
import { upstreamOrFallback } from './stale-fallback.ts';

const MAX_REFERRERS_BYTES = 4 * 1024 * 1024;

/** hit: from the record; miss: asked upstream now; revalidated: asked again; stale: upstream away. */
export type ReferrersCacheResult = 'hit' | 'miss' | 'revalidated' | 'stale';

export interface ReferrersResult {
  readonly body: Buffer;
  readonly contentType: string;
  /** "artifactType" when the answer was filtered by it. */
  readonly filtersApplied: string | undefined;
  readonly cache: ReferrersCacheResult;
}

export class ReferrersService {
  readonly #store: ManifestStore;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #flights = new SingleFlight<ReferrersRecord>();
  /** Read-modify-writes of one record, one at a time in this process. */
  readonly #updates = new Map<string, Promise<unknown>>();

  constructor(deps: { store: ManifestStore; tagTtlSeconds: number; logger: Logger; now?: () => number }) {
    this.#store = deps.store;
    this.#ttlMs = deps.tagTtlSeconds * 1000;
    this.#now = deps.now ?? Date.now;
    this.#log = deps.logger;
  }

  async get(upstream: Upstream, repository: string, digest: string, artifactType: string | undefined): Promise<ReferrersResult> {
    const repo: RepoKey = { upstream: upstream.name, repository };
    const record = await this.#store.getReferrers(repo, digest);
    const answered = record !== undefined && record.fetchedAt > 0;
    if (upstream.offline || (answered && this.#now() - record.fetchedAt < this.#ttlMs)) {
      return answer(record, artifactType, 'hit');
    }
    const flight = this.#flights.run(`${upstream.name}/${repository}@${digest}`, () => this.#refresh(upstream, repo, digest));
    if (!record) return answer(await flight.result, artifactType, 'miss');
    const outcome = await upstreamOrFallback(flight, upstream.staleAfterMs);
    if (outcome.ok) return answer(outcome.value, artifactType, answered ? 'revalidated' : 'miss');
    upstream.servedStale('referrers');
    this.#log.debug({ upstream: upstream.name, repository, digest, why: outcome.why }, 'serving cached referrers stale');
    return answer(record, artifactType, 'stale');
  }

  /**
   * Records a manifest wharf stored for a repository under its subject, if it has one. Never
   * fails the caller: a record that cannot be written costs only this entry until the upstream
   * lists it.
   */
  noteManifest(repo: RepoKey, manifest: StoredManifest): void {
    this.recordHeld(repo, manifest).catch((err: unknown) => this.#log.warn({ ...repo, manifest: manifest.digest, err: String(err) }, 'cannot record a referrer'));
  }

  /** noteManifest, awaited and failing loudly: for `wharf import`, which must say what it could not do. */
  async recordHeld(repo: RepoKey, manifest: StoredManifest): Promise<void> {
    const entry = referrerEntry(manifest);
    if (!entry) return;
    await this.#update(repo, entry.subject, (old) => {
      if (old?.held.some((d) => d.digest === entry.descriptor.digest)) return undefined;
      return { upstream: old?.upstream ?? [], fetchedAt: old?.fetchedAt ?? 0, api: old?.api ?? false, held: [...(old?.held ?? []), entry.descriptor] };
    });
  }

  async #refresh(upstream: Upstream, repo: RepoKey, digest: string): Promise<ReferrersRecord> {
    let list: ReferrerDescriptor[];
    let api = true;
    try {
      list = await this.#fromApi(upstream, repo.repository, digest);
    } catch (err) {
      if (!hasNoReferrersApi(err)) throw err;
      api = false;
      list = await this.#fromTag(upstream, repo.repository, digest);
    }
    const fetchedAt = this.#now();
    let written: ReferrersRecord | undefined;
    await this.#update(repo, digest, (old) => (written = { upstream: list, fetchedAt, api, held: old?.held ?? [] }));
    return written!;
  }

  async #fromApi(upstream: Upstream, repository: string, digest: string): Promise<ReferrerDescriptor[]> {
    // Never filtered upstream: the record serves every artifactType, and wharf filters.
    const res = await upstream.get({
      path: `/v2/${repository}/referrers/${digest}`,
      repository,
      accept: MediaType.ociIndex,
      small: true,
      notFound: () => new ReferrersUnsupportedError(upstream.name),
    });
    const body = await readUpstreamBody(upstream, res.body, MAX_REFERRERS_BYTES);
    upstream.received(body.length);
    return indexEntries(upstream.name, headerValue(res.headers['content-type']), body, 'referrers answer');
  }

  /** The referrers tag schema: an index tagged <alg>-<hex> lists the subject's referrers. */
  async #fromTag(upstream: Upstream, repository: string, digest: string): Promise<ReferrerDescriptor[]> {
    const tag = referrersTag(digest);
    let res;
    try {
      res = await upstream.get({
        path: `/v2/${repository}/manifests/${tag}`,
        repository,
        accept: MediaType.ociIndex,
        small: true,
        notFound: () => new ManifestUnknownError(tag),
      });
    } catch (err) {
      if (err instanceof ManifestUnknownError) return [];
      throw err;
    }
    const body = await readUpstreamBody(upstream, res.body, MAX_REFERRERS_BYTES);
    upstream.received(body.length);
    return indexEntries(upstream.name, headerValue(res.headers['content-type']), body, `referrers tag ${tag}`);
  }

  /** change: the new record from the old, or undefined to leave it. */
  #update(repo: RepoKey, subject: string, change: (old: ReferrersRecord | undefined) => ReferrersRecord | undefined): Promise<void> {
    const key = `${repo.upstream}\0${repo.repository}\0${subject}`;
    const run = async () => {
      const next = change(await this.#store.getReferrers(repo, subject));
      if (next) await this.#store.putReferrers(repo, subject, next);
    };
    const previous = this.#updates.get(key) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(run);
    this.#updates.set(key, mine);
    const forget = () => {
      if (this.#updates.get(key) === mine) this.#updates.delete(key);
    };
    mine.then(forget, forget);
    return mine;
  }
}

/** The tag a client pushes for a subject on a registry without the referrers API. */
export function referrersTag(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm.slice(0, 32)}-${hex.slice(0, 64)}`;
}

/** What the upstream says has no referrers API: 404, or 400/405 on the path. */
function hasNoReferrersApi(err: unknown): boolean {
  return err instanceof ReferrersUnsupportedError || (err instanceof UnexpectedStatusError && (err.statusCode === 400 || err.statusCode === 405));
}

function indexEntries(upstream: string, contentType: string | undefined, body: Buffer, what: string): ReferrerDescriptor[] {
  const check = checkManifest(contentType, body);
  if (!check.ok || check.mediaType !== MediaType.ociIndex) {
    throw new UpstreamProtocolError(upstream, `${what} is not an OCI index${check.ok ? '' : `: ${check.why}`}`);
  }
  const parsed = JSON.parse(body.toString('utf8')) as { manifests: unknown[] };
  return parsed.manifests.map((d) => descriptor(d as Record<string, unknown>));
}

/** The descriptor fields a referrers list carries (checkManifest has checked their shape). */
function descriptor(d: Record<string, unknown>): ReferrerDescriptor {
  return {
    mediaType: d.mediaType as string,
    digest: d.digest as string,
    size: d.size as number,
    ...(typeof d.artifactType === 'string' ? { artifactType: d.artifactType } : {}),
    ...(d.annotations !== undefined ? { annotations: d.annotations as Record<string, string> } : {}),
  };
}

/** A stored manifest's subject and its entry in the subject's list, per the spec's rules. */
function referrerEntry(manifest: StoredManifest): { subject: string; descriptor: ReferrerDescriptor } | undefined {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(manifest.body.toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const subject = (m.subject as { digest?: unknown } | undefined)?.digest;
  if (typeof subject !== 'string') return undefined;
  // artifactType: the manifest's own, else (image manifests) its config's media type.
  const configType = (m.config as { mediaType?: unknown } | undefined)?.mediaType;
  const artifactType = typeof m.artifactType === 'string' ? m.artifactType : typeof configType === 'string' ? configType : undefined;
  const annotations = typeof m.annotations === 'object' && m.annotations !== null ? (m.annotations as Record<string, string>) : undefined;
  return {
    subject,
    descriptor: {
      mediaType: manifest.mediaType,
      digest: manifest.digest,
      size: manifest.body.length,
      ...(artifactType ? { artifactType } : {}),
      ...(annotations ? { annotations } : {}),
    },
  };
}

function answer(record: ReferrersRecord | undefined, artifactType: string | undefined, cache: ReferrersCacheResult): ReferrersResult {
  const seen = new Set<string>();
  const all: ReferrerDescriptor[] = [];
  for (const d of [...(record?.upstream ?? []), ...(record?.held ?? [])]) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    all.push(d);
  }
  const filtered = artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
  const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: filtered };
  return {
    body: Buffer.from(JSON.stringify(index)),
    contentType: MediaType.ociIndex,
    filtersApplied: artifactType ? 'artifactType' : undefined,
    cache,
  };
}
