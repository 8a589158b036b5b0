// The manifest store: exact manifest bytes by digest, tag -> digest records, tag lists, and the
// links that say which repository references which digest (content is served under a
// repository only through them: a private layer cached for one repository is not another's).
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

/** One entry of a referrers list: an OCI descriptor of a manifest whose subject is the digest. */
export interface ReferrerDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** What wharf knows of the manifests that refer to one digest in one repository. */
export interface ReferrersRecord {
  /** The upstream's list as it last gave it (referrers API or sha256-<hex> tag), unfiltered. */
  readonly upstream: readonly ReferrerDescriptor[];
  /** Epoch ms the upstream last answered for this digest; 0: never. */
  readonly fetchedAt: number;
  /** Whether that answer came from a referrers API (false: the tag schema, or nothing). */
  readonly api: boolean;
  /** Manifests wharf stored for this repository whose subject is this digest. */
  readonly held: readonly ReferrerDescriptor[];
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
  /** Records that the repository references these digests (manifests and blobs). Idempotent. */
  putLinks(repo: RepoKey, digests: readonly string[]): Promise<void>;
  /** Whether the repository is known to reference the digest. */
  hasLink(repo: RepoKey, digest: string): Promise<boolean>;
  /** Forgets links (gc: with the content they point to). */
  deleteLinks(repo: RepoKey, digests: readonly string[]): Promise<void>;
  /** Every link held (maintenance: gc, export; slow on big stores). */
  scanLinks(): AsyncIterable<{ repo: RepoKey; digest: string }>;
  /** The referrers record of a subject digest in a repository. */
  getReferrers(repo: RepoKey, subject: string): Promise<ReferrersRecord | undefined>;
  /** Replaces it whole (read-modify-write is the caller's, see referrers-service.ts). */
  putReferrers(repo: RepoKey, subject: string, record: ReferrersRecord): Promise<void>;
  /** Every manifest digest held (maintenance: gc, stats; slow on big stores). */
  scanManifests(): AsyncIterable<string>;
  /** Every tag record held (maintenance: gc, stats; slow on big stores). */
  scanTags(): AsyncIterable<{ repo: RepoKey; tag: string; record: TagRecord }>;
  /** Resolves when the backend answers and can be written; rejects with why not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
