// An in-memory LRU in front of any ManifestStore: the fast path for hot manifests and tags, and
// what keeps cached answers flowing while the inner store (e.g. Redis) is down.
// Manifests are immutable by digest, so a memory copy is never stale. Tags and tag lists are
// write-through; their freshness is the services' business (fetchedAt), not this cache's.
import { LRUCache } from 'lru-cache';
import { growingLru } from '../growing-lru.ts';
import type { ManifestStore, ReferrersRecord, RepoKey, StoredManifest, TagListRecord, TagRecord } from './manifest-store.ts';
import { parseDigest } from '../oci/digest.ts';
import { assertManifestRecord, assertRepoKey } from './store-records.ts';

export interface MemoryCacheOptions {
  readonly maxManifests: number;
  /** Bound on the manifest bodies held (default 64 MiB). */
  readonly maxBytes?: number;
  /** Default 10 000. */
  readonly maxTags?: number;
  /** Default 1 000 (a list may hold thousands of tags). */
  readonly maxTagLists?: number;
  /**
   * Bound on the tag lists held, by their estimated heap size (default 32 MiB): one list may
   * hold 100 000 tags. A list larger than this is not held; it is read from the store.
   */
  readonly maxTagListBytes?: number;
  /**
   * For a reader that shares the inner store with a writer (a hit thread): a tag held in memory
   * for this long since it was fetched is read again from the inner store, where the writer may
   * have put a newer one. Unset: memory is trusted (this process writes every change itself).
   */
  readonly tagRecheckAfterMs?: number;
  /** Links known to exist (default 100 000); links not known are always asked of the store. */
  readonly maxLinks?: number;
}

/** What the memory layer holds, read without waiting on the store behind it. */
export interface ManifestMemory {
  peekManifest(digest: string): StoredManifest | undefined;
  /** A held tag, unless it is due to be read again from the inner store (tagRecheckAfterMs). */
  peekTag(repo: RepoKey, tag: string): TagRecord | undefined;
  /** True when the link is held in memory; false means "ask the store", not "absent". */
  peekLink(repo: RepoKey, digest: string): boolean;
}

/** Rough per-entry overhead so that tiny manifests still count against maxBytes. */
const ENTRY_OVERHEAD = 128;
/** Rough heap cost of one tag in a list beyond its characters: string header, array slot. */
const TAG_OVERHEAD = 32;

export class MemoryCachedManifestStore implements ManifestStore, ManifestMemory {
  readonly backend: string;
  readonly #inner: ManifestStore;
  readonly #manifests: LRUCache<string, StoredManifest>;
  readonly #tags: LRUCache<string, TagRecord>;
  readonly #tagLists: LRUCache<string, TagListRecord>;
  /** Links known to exist. Absence is never remembered: a link may be added by another process. */
  readonly #links: LRUCache<string, true>;
  readonly #tagRecheckAfterMs: number;

  constructor(inner: ManifestStore, opts: MemoryCacheOptions) {
    this.#inner = inner;
    this.backend = inner.backend;
    this.#manifests = new LRUCache({
      max: opts.maxManifests,
      maxSize: opts.maxBytes ?? 64 * 1024 * 1024,
      sizeCalculation: (m) => m.body.byteLength + m.mediaType.length + ENTRY_OVERHEAD,
    });
    this.#tags = growingLru(opts.maxTags ?? 10_000);
    this.#tagLists = new LRUCache({
      max: opts.maxTagLists ?? 1_000,
      maxSize: opts.maxTagListBytes ?? 32 * 1024 * 1024,
      sizeCalculation: tagListSize,
    });
    this.#links = growingLru(opts.maxLinks ?? 100_000);
    this.#tagRecheckAfterMs = opts.tagRecheckAfterMs ?? Infinity;
  }

  peekLink(repo: RepoKey, digest: string): boolean {
    return this.#links.has(linkKey(repo, digest));
  }

  async putLinks(repo: RepoKey, digests: readonly string[]): Promise<void> {
    // Checked here too: memory answers before the inner store ever sees the key.
    assertRepoKey(repo);
    for (const d of digests) parseDigest(d);
    const fresh = digests.filter((d) => !this.#links.has(linkKey(repo, d)));
    if (fresh.length === 0) return;
    for (const d of fresh) this.#links.set(linkKey(repo, d), true);
    await this.#inner.putLinks(repo, fresh);
  }

  async hasLink(repo: RepoKey, digest: string): Promise<boolean> {
    const key = linkKey(repo, digest);
    if (this.#links.has(key)) return true;
    const found = await this.#inner.hasLink(repo, digest);
    if (found) this.#links.set(key, true);
    return found;
  }

  async deleteLinks(repo: RepoKey, digests: readonly string[]): Promise<void> {
    for (const d of digests) this.#links.delete(linkKey(repo, d));
    await this.#inner.deleteLinks(repo, digests);
  }

  scanLinks(): AsyncIterable<{ repo: RepoKey; digest: string }> {
    return this.#inner.scanLinks();
  }

  peekManifest(digest: string): StoredManifest | undefined {
    return this.#manifests.get(digest);
  }

  peekTag(repo: RepoKey, tag: string): TagRecord | undefined {
    const held = this.#tags.get(tagKey(repo, tag));
    return held && Date.now() - held.fetchedAt < this.#tagRecheckAfterMs ? held : undefined;
  }

  async getManifest(digest: string): Promise<StoredManifest | undefined> {
    const hit = this.#manifests.get(digest);
    if (hit) return hit;
    const found = await this.#inner.getManifest(digest);
    if (!found) return undefined;
    const own = { digest: found.digest, mediaType: found.mediaType, body: ownBuffer(found.body) };
    this.#manifests.set(digest, own);
    return own;
  }

  async putManifest(manifest: StoredManifest): Promise<void> {
    // Checked here too: memory is served from before the inner store ever sees the record.
    assertManifestRecord(manifest);
    this.#manifests.set(manifest.digest, { digest: manifest.digest, mediaType: manifest.mediaType, body: ownBuffer(manifest.body) });
    await this.#inner.putManifest(manifest);
  }

  async getTag(repo: RepoKey, tag: string): Promise<TagRecord | undefined> {
    const key = tagKey(repo, tag);
    const held = this.#tags.get(key);
    if (!held || Date.now() - held.fetchedAt < this.#tagRecheckAfterMs) return readThrough(this.#tags, key, () => this.#inner.getTag(repo, tag));
    // Due: the store may hold a newer record. One it cannot give (away, or it has none) keeps
    // the held one, which is still what to serve stale should the upstream be away too.
    const found = await this.#inner.getTag(repo, tag);
    const now = this.#tags.get(key);
    // A put that landed while we read is newer than what we read: keep it.
    if (found && now === held && found.fetchedAt > held.fetchedAt) this.#tags.set(key, found);
    return this.#tags.get(key) ?? held;
  }

  async putTag(repo: RepoKey, tag: string, record: TagRecord): Promise<void> {
    // Memory first: if the inner write fails, this process still answers from memory.
    this.#tags.set(tagKey(repo, tag), record);
    await this.#inner.putTag(repo, tag, record);
  }

  getTagList(repo: RepoKey): Promise<TagListRecord | undefined> {
    return readThrough(this.#tagLists, repoKey(repo), () => this.#inner.getTagList(repo));
  }

  async putTagList(repo: RepoKey, record: TagListRecord): Promise<void> {
    this.#tagLists.set(repoKey(repo), record);
    await this.#inner.putTagList(repo, record);
  }

  async deleteTag(repo: RepoKey, tag: string): Promise<void> {
    this.#tags.delete(tagKey(repo, tag));
    await this.#inner.deleteTag(repo, tag);
  }

  async deleteManifest(digest: string): Promise<void> {
    this.#manifests.delete(digest);
    await this.#inner.deleteManifest(digest);
  }

  /** Not held in memory: referrers are asked rarely, and every replica should see one record. */
  getReferrers(repo: RepoKey, subject: string): Promise<ReferrersRecord | undefined> {
    return this.#inner.getReferrers(repo, subject);
  }

  putReferrers(repo: RepoKey, subject: string, record: ReferrersRecord): Promise<void> {
    return this.#inner.putReferrers(repo, subject, record);
  }

  scanManifests(): AsyncIterable<string> {
    return this.#inner.scanManifests();
  }

  scanTags(): AsyncIterable<{ repo: RepoKey; tag: string; record: TagRecord }> {
    return this.#inner.scanTags();
  }

  ping(): Promise<void> {
    return this.#inner.ping();
  }

  async close(): Promise<void> {
    this.#manifests.clear();
    this.#tags.clear();
    this.#tagLists.clear();
    this.#links.clear();
    await this.#inner.close();
  }
}

async function readThrough<V extends {}>(cache: LRUCache<string, V>, key: string, read: () => Promise<V | undefined>): Promise<V | undefined> {
  const hit = cache.get(key);
  if (hit) return hit;
  const found = await read();
  // A put that landed while we read is newer than what we read: keep it.
  if (found && !cache.has(key)) cache.set(key, found);
  return cache.get(key) ?? found;
}

function tagListSize(record: TagListRecord): number {
  let size = ENTRY_OVERHEAD;
  for (const tag of record.tags) size += tag.length + TAG_OVERHEAD;
  return size;
}

// NUL cannot occur in valid keys, so these joins are unambiguous.
function repoKey(repo: RepoKey): string {
  return `${repo.upstream}\0${repo.repository}`;
}

function linkKey(repo: RepoKey, digest: string): string {
  return `${repo.upstream}\0${repo.repository}\0${digest}`;
}

function tagKey(repo: RepoKey, tag: string): string {
  return `${repo.upstream}\0${repo.repository}\0${tag}`;
}

/**
 * Copies a body that is a view into a much larger buffer (ioredis returns slices of its socket
 * reads), so a cached manifest holds only its own bytes and maxBytes means what it says.
 */
function ownBuffer(body: Buffer): Buffer {
  if (body.buffer.byteLength <= body.byteLength * 2 + 4096) return body;
  const copy = Buffer.allocUnsafeSlow(body.byteLength);
  body.copy(copy);
  return copy;
}
