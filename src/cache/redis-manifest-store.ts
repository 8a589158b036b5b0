// ManifestStore on Redis (ioredis), shared by every wharf instance pointed at the same server.
//
//   <prefix>manifest:<digest>                   "<mediaType>\n" then the exact body (one GET)
//   <prefix>tag:<upstream>/<repository>:<tag>   JSON {digest, mediaType, fetchedAt}
//   <prefix>taglist:<upstream>/<repository>     JSON {tags, fetchedAt}
//   <prefix>referrers:<upstream>/<repository>@<digest>  JSON {upstream, fetchedAt, api, held}
//
// The client should be created with `enableAutoPipelining: true`: concurrent gets then share
// round trips. Bodies are read with getBuffer and never decoded.
import type { Cluster, Redis } from 'ioredis';
import { parseDigest } from '../oci/digest.ts';
import type { ManifestStore, ReferrersRecord, RepoKey, StoredManifest, TagListRecord, TagRecord } from './manifest-store.ts';
import {
  assertRepoKey,
  assertTag,
  decodeManifest,
  decodeReferrersRecord,
  decodeTagListRecord,
  decodeTagRecord,
  encodeManifest,
  encodeReferrersRecord,
  encodeTagListRecord,
  encodeTagRecord,
} from './store-records.ts';

export interface RedisManifestStoreOptions {
  /**
   * close() quits the client only when true (default false): the caller that created the
   * client usually shares it or quits it itself.
   */
  readonly ownsClient?: boolean;
}

export class RedisManifestStore implements ManifestStore {
  readonly backend = 'redis';
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #ownsClient: boolean;

  constructor(redis: Redis | Cluster, keyPrefix: string, opts: RedisManifestStoreOptions = {}) {
    this.#redis = redis;
    this.#prefix = keyPrefix;
    this.#ownsClient = opts.ownsClient ?? false;
  }

  async getManifest(digest: string): Promise<StoredManifest | undefined> {
    const value = await this.#redis.getBuffer(this.#manifestKey(digest));
    return value ? decodeManifest(digest, value) : undefined;
  }

  async putManifest(manifest: StoredManifest): Promise<void> {
    await this.#redis.set(this.#manifestKey(manifest.digest), encodeManifest(manifest));
  }

  async getTag(repo: RepoKey, tag: string): Promise<TagRecord | undefined> {
    const value = await this.#redis.get(this.#tagKey(repo, tag));
    return value === null ? undefined : decodeTagRecord(value);
  }

  async putTag(repo: RepoKey, tag: string, record: TagRecord): Promise<void> {
    await this.#redis.set(this.#tagKey(repo, tag), encodeTagRecord(record));
  }

  async getTagList(repo: RepoKey): Promise<TagListRecord | undefined> {
    const value = await this.#redis.get(this.#tagListKey(repo));
    return value === null ? undefined : decodeTagListRecord(value);
  }

  async putTagList(repo: RepoKey, record: TagListRecord): Promise<void> {
    await this.#redis.set(this.#tagListKey(repo), encodeTagListRecord(record));
  }

  async deleteTag(repo: RepoKey, tag: string): Promise<void> {
    await this.#redis.del(this.#tagKey(repo, tag));
  }

  async deleteManifest(digest: string): Promise<void> {
    await this.#redis.del(this.#manifestKey(digest));
  }

  async putLinks(repo: RepoKey, digests: readonly string[]): Promise<void> {
    if (digests.length === 0) return;
    await this.#redis.sadd(this.#linksKey(repo), ...digests.map((d) => parseDigest(d).value));
  }

  async hasLink(repo: RepoKey, digest: string): Promise<boolean> {
    return (await this.#redis.sismember(this.#linksKey(repo), parseDigest(digest).value)) === 1;
  }

  async deleteLinks(repo: RepoKey, digests: readonly string[]): Promise<void> {
    if (digests.length === 0) return;
    await this.#redis.srem(this.#linksKey(repo), ...digests.map((d) => parseDigest(d).value));
  }

  async getReferrers(repo: RepoKey, subject: string): Promise<ReferrersRecord | undefined> {
    const value = await this.#redis.get(this.#referrersKey(repo, subject));
    return value === null ? undefined : decodeReferrersRecord(value);
  }

  async putReferrers(repo: RepoKey, subject: string, record: ReferrersRecord): Promise<void> {
    await this.#redis.set(this.#referrersKey(repo, subject), encodeReferrersRecord(record));
  }

  async *scanLinks(): AsyncIterable<{ repo: RepoKey; digest: string }> {
    const start = `${this.#prefix}links:`;
    for await (const keys of this.#scanKeys(start)) {
      for (const key of keys as string[]) {
        const path = key.slice(start.length);
        const slash = path.indexOf('/');
        if (slash === -1) continue;
        const repo = { upstream: path.slice(0, slash), repository: path.slice(slash + 1) };
        for await (const members of this.#redis.sscanStream(key, { count: 500 })) {
          for (const digest of members as string[]) yield { repo, digest };
        }
      }
    }
  }

  async *scanManifests(): AsyncIterable<string> {
    const start = `${this.#prefix}manifest:`;
    for await (const keys of this.#scanKeys(start)) {
      for (const key of keys as string[]) yield key.slice(start.length);
    }
  }

  async *scanTags(): AsyncIterable<{ repo: RepoKey; tag: string; record: TagRecord }> {
    const start = `${this.#prefix}tag:`;
    for await (const keys of this.#scanKeys(start)) {
      for (const key of keys as string[]) {
        // tag:<upstream>/<repository>:<tag>; tags have no ':' and upstream names no '/'.
        const rest = key.slice(start.length);
        const colon = rest.lastIndexOf(':');
        const slash = rest.indexOf('/');
        if (colon === -1 || slash === -1) continue;
        const value = await this.#redis.get(key);
        const record = value === null ? undefined : decodeTagRecord(value);
        if (record) yield { repo: { upstream: rest.slice(0, slash), repository: rest.slice(slash + 1, colon) }, tag: rest.slice(colon + 1), record };
      }
    }
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  async close(): Promise<void> {
    if (!this.#ownsClient) return;
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  #manifestKey(digest: string): string {
    return `${this.#prefix}manifest:${parseDigest(digest).value}`;
  }

  #tagKey(repo: RepoKey, tag: string): string {
    assertTag(tag);
    return `${this.#prefix}tag:${repoPath(repo)}:${tag}`;
  }

  /**
   * Batches of keys starting with `start`. A Cluster has no keyspace-wide SCAN: every master is
   * scanned for the slots it holds (each key lives on exactly one master).
   */
  async *#scanKeys(start: string): AsyncIterable<string[]> {
    const match = `${escapeGlob(start)}*`;
    const nodes = 'nodes' in this.#redis && typeof this.#redis.nodes === 'function' ? this.#redis.nodes('master') : [this.#redis as Redis];
    for (const node of nodes) {
      for await (const keys of node.scanStream({ match, count: 500 })) yield keys as string[];
    }
  }

  #linksKey(repo: RepoKey): string {
    return `${this.#prefix}links:${repoPath(repo)}`;
  }

  #referrersKey(repo: RepoKey, subject: string): string {
    return `${this.#prefix}referrers:${repoPath(repo)}@${parseDigest(subject).value}`;
  }

  #tagListKey(repo: RepoKey): string {
    return `${this.#prefix}taglist:${repoPath(repo)}`;
  }
}

function repoPath(repo: RepoKey): string {
  assertRepoKey(repo);
  return `${repo.upstream}/${repo.repository}`;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
