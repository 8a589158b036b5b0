// Keeps a manifest store failure (Redis down or hung, disk full or read-only) from failing
// requests: a failed read is a cache miss, a failed write is skipped. Each operation and each
// failure is counted; the log gets the first failure and then one summary line per interval,
// not one line per request.
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.ts';
import type { ManifestStore, ReferrersRecord, RepoKey, StoredManifest, TagListRecord, TagRecord } from './manifest-store.ts';

const LOG_INTERVAL_MS = 10_000;

export class FaultTolerantManifestStore implements ManifestStore {
  readonly backend: string;
  readonly #inner: ManifestStore;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  #lastLogAt = 0;
  #unlogged = 0;

  constructor(inner: ManifestStore, deps: { logger: Logger; metrics: Metrics }) {
    this.#inner = inner;
    this.backend = inner.backend;
    this.#log = deps.logger;
    this.#metrics = deps.metrics;
  }

  getManifest(digest: string): Promise<StoredManifest | undefined> {
    return this.#read('getManifest', () => this.#inner.getManifest(digest));
  }

  putManifest(manifest: StoredManifest): Promise<void> {
    return this.#write('putManifest', () => this.#inner.putManifest(manifest));
  }

  getTag(repo: RepoKey, tag: string): Promise<TagRecord | undefined> {
    return this.#read('getTag', () => this.#inner.getTag(repo, tag));
  }

  putTag(repo: RepoKey, tag: string, record: TagRecord): Promise<void> {
    return this.#write('putTag', () => this.#inner.putTag(repo, tag, record));
  }

  getTagList(repo: RepoKey): Promise<TagListRecord | undefined> {
    return this.#read('getTagList', () => this.#inner.getTagList(repo));
  }

  putTagList(repo: RepoKey, record: TagListRecord): Promise<void> {
    return this.#write('putTagList', () => this.#inner.putTagList(repo, record));
  }

  deleteTag(repo: RepoKey, tag: string): Promise<void> {
    return this.#write('deleteTag', () => this.#inner.deleteTag(repo, tag));
  }

  deleteManifest(digest: string): Promise<void> {
    return this.#write('deleteManifest', () => this.#inner.deleteManifest(digest));
  }

  putLinks(repo: RepoKey, digests: readonly string[]): Promise<void> {
    return this.#write('putLinks', () => this.#inner.putLinks(repo, digests));
  }

  /** A failed read is "not known": the caller then asks the upstream, never serves blind. */
  async hasLink(repo: RepoKey, digest: string): Promise<boolean> {
    return (await this.#read('hasLink', () => this.#inner.hasLink(repo, digest))) ?? false;
  }

  deleteLinks(repo: RepoKey, digests: readonly string[]): Promise<void> {
    return this.#write('deleteLinks', () => this.#inner.deleteLinks(repo, digests));
  }

  getReferrers(repo: RepoKey, subject: string): Promise<ReferrersRecord | undefined> {
    return this.#read('getReferrers', () => this.#inner.getReferrers(repo, subject));
  }

  putReferrers(repo: RepoKey, subject: string, record: ReferrersRecord): Promise<void> {
    return this.#write('putReferrers', () => this.#inner.putReferrers(repo, subject, record));
  }

  /** Scans are maintenance: their failures are the caller's to report. */
  scanLinks(): AsyncIterable<{ repo: RepoKey; digest: string }> {
    return this.#inner.scanLinks();
  }

  scanManifests(): AsyncIterable<string> {
    return this.#inner.scanManifests();
  }

  scanTags(): AsyncIterable<{ repo: RepoKey; tag: string; record: TagRecord }> {
    return this.#inner.scanTags();
  }

  /** Not shielded: health checks must see the backend as it is. */
  ping(): Promise<void> {
    return this.#inner.ping();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async #read<T>(operation: string, op: () => Promise<T | undefined>): Promise<T | undefined> {
    this.#metrics.manifestStoreOperations.inc({ backend: this.backend, operation });
    try {
      return await op();
    } catch (err) {
      this.#failed(operation, err);
      return undefined;
    }
  }

  async #write(operation: string, op: () => Promise<void>): Promise<void> {
    this.#metrics.manifestStoreOperations.inc({ backend: this.backend, operation });
    try {
      await op();
    } catch (err) {
      this.#failed(operation, err);
    }
  }

  #failed(operation: string, err: unknown): void {
    this.#metrics.manifestStoreErrors.inc({ backend: this.backend, operation });
    const now = Date.now();
    if (now - this.#lastLogAt < LOG_INTERVAL_MS) {
      this.#unlogged++;
      return;
    }
    this.#log.warn(
      { backend: this.backend, operation, err: err instanceof Error ? err.message : String(err), failuresSinceLastLog: this.#unlogged },
      'manifest store failed; serving without it',
    );
    this.#lastLogAt = now;
    this.#unlogged = 0;
  }
}
