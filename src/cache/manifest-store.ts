// The manifest store: exact manifest bytes by digest, tag -> digest records and tag lists.
// Implementations: embedded-manifest-store.ts (default, files under dataDir) and
// redis-manifest-store.ts. Both run test/contract/manifest-store.contract.ts.

/** Which repository of which upstream a record belongs to. */
export interface RepoKey {
  /** Configured upstream name, e.g. "docker.io". */
  readonly upstream: string;
  /** Repository as sent upstream, e.g. "library/alpine". */
  readonly repository: string;
}

export interface StoredManifest {
  readonly digest: string;
  readonly mediaType: string;
  /** The exact upstream bytes; never re-serialised. */
  readonly body: Buffer;
}

export interface TagRecord {
  readonly digest: string;
  readonly mediaType: string;
  /** Epoch ms of the last time the upstream confirmed this tag. */
  readonly fetchedAt: number;
}

export interface TagListRecord {
  readonly tags: readonly string[];
  readonly fetchedAt: number;
}

export interface ManifestStore {
  /** "embedded" or "redis": used in logs and metric labels. */
  readonly backend: string;
  getManifest(digest: string): Promise<StoredManifest | undefined>;
  putManifest(manifest: StoredManifest): Promise<void>;
  getTag(repo: RepoKey, tag: string): Promise<TagRecord | undefined>;
  putTag(repo: RepoKey, tag: string, record: TagRecord): Promise<void>;
  getTagList(repo: RepoKey): Promise<TagListRecord | undefined>;
  putTagList(repo: RepoKey, record: TagListRecord): Promise<void>;
  deleteTag(repo: RepoKey, tag: string): Promise<void>;
  deleteManifest(digest: string): Promise<void>;
  /** Every manifest digest held (maintenance: gc, stats; slow on big stores). */
  scanManifests(): AsyncIterable<string>;
  /** Every tag record held (maintenance: gc, stats; slow on big stores). */
  scanTags(): AsyncIterable<{ repo: RepoKey; tag: string; record: TagRecord }>;
  /** Resolves when the backend answers and can be written; rejects with why not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
