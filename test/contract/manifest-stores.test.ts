// Runs the ManifestStore contract against every backend and decorator stack, on real files and a
// real redis-server; then the memory decorator's own promises (outage, bounds).
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedManifestStore } from '../../src/cache/embedded-manifest-store.ts';
import type { ManifestStore, ReferrersRecord, RepoKey, StoredManifest, TagListRecord, TagRecord } from '../../src/cache/manifest-store.ts';
import { MemoryCachedManifestStore } from '../../src/cache/memory-cached-manifest-store.ts';
import { RedisManifestStore } from '../../src/cache/redis-manifest-store.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.ts';
import { makeTempDir } from '../support/temp-dir.ts';
import { manifest, manifestStoreContract, type ManifestStoreFixture } from './manifest-store.contract.ts';

let redisServer: RedisServer;
let redisCluster: RedisCluster;
beforeAll(async () => {
  [redisServer, redisCluster] = await Promise.all([startRedisServer(), startRedisCluster()]);
});
afterAll(async () => {
  await redisServer?.stop();
  await redisCluster?.stop();
});

const memory = (inner: ManifestStore) => new MemoryCachedManifestStore(inner, { maxManifests: 1000 });

async function embeddedFixture(wrap: (s: ManifestStore) => ManifestStore = (s) => s): Promise<ManifestStoreFixture> {
  const dir = await makeTempDir('wharf-manifests-');
  return {
    store: wrap(new EmbeddedManifestStore(dir.path)),
    reopen: async () => wrap(new EmbeddedManifestStore(dir.path)),
    cleanup: dir.cleanup,
  };
}

function redisClient(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, { enableAutoPipelining: true, ...opts });
}

async function redisFixture(wrap: (s: ManifestStore) => ManifestStore = (s) => s): Promise<ManifestStoreFixture> {
  // A prefix per test keeps tests apart on the shared server.
  const prefix = `wharf-test:${randomUUID()}:`;
  const client = redisClient(redisServer.url);
  return {
    store: wrap(new RedisManifestStore(client, prefix)),
    reopen: async () => wrap(new RedisManifestStore(redisClient(redisServer.url), prefix, { ownsClient: true })),
    cleanup: async () => {
      await client.quit();
    },
  };
}

/** The same store on a three-master Cluster: keys spread over the masters, scans walk each. */
async function clusterFixture(): Promise<ManifestStoreFixture> {
  const prefix = `wharf-test:${randomUUID()}:`;
  const client = redisCluster.client();
  return {
    store: new RedisManifestStore(client, prefix),
    reopen: async () => new RedisManifestStore(redisCluster.client(), prefix, { ownsClient: true }),
    cleanup: async () => {
      await client.quit();
    },
  };
}

manifestStoreContract('embedded', () => embeddedFixture());
manifestStoreContract('embedded + memory', () => embeddedFixture(memory));
manifestStoreContract('redis', () => redisFixture());
manifestStoreContract('redis + memory', () => redisFixture(memory));
manifestStoreContract('redis cluster', () => clusterFixture());

describe('RedisManifestStore', () => {
  it('uses the documented keys, body read back as raw bytes', async () => {
    const client = redisClient(redisServer.url);
    try {
      const store = new RedisManifestStore(client, 'wharf-keys:');
      const m = manifest(Buffer.from([0x7b, 0xff, 0x7d]));
      await store.putManifest(m);
      await store.putTag({ upstream: 'localhost:5000', repository: 'a/b' }, 'v1', { digest: m.digest, mediaType: m.mediaType, fetchedAt: 5 });
      await store.putTagList({ upstream: 'localhost:5000', repository: 'a/b' }, { tags: ['v1'], fetchedAt: 6 });
      const stored = await client.getBuffer(`wharf-keys:manifest:${m.digest}`);
      expect(stored).toEqual(Buffer.concat([Buffer.from(`${m.mediaType}\n`), m.body]));
      expect(JSON.parse((await client.get('wharf-keys:tag:localhost:5000/a/b:v1'))!)).toEqual({ digest: m.digest, mediaType: m.mediaType, fetchedAt: 5 });
      expect(JSON.parse((await client.get('wharf-keys:taglist:localhost:5000/a/b'))!)).toEqual({ tags: ['v1'], fetchedAt: 6 });
      await store.close();
      // Not its client: still usable after close().
      expect(await client.ping()).toBe('PONG');
    } finally {
      await client.quit();
    }
  });
});

describe('MemoryCachedManifestStore', () => {
  const repo: RepoKey = { upstream: 'docker.io', repository: 'library/alpine' };
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('keeps answering from memory when redis-server is killed, and fails for what it never saw', async () => {
    const server = await startRedisServer();
    cleanups.push(() => server.stop());
    const prefix = 'outage:';
    // Settings as in production (bounded retries), so requests fail instead of queueing forever.
    const client = redisClient(server.url, { maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    cleanups.push(async () => client.disconnect());

    const writer = new RedisManifestStore(client, prefix);
    const m = manifest(randomBytes(3000));
    const tag: TagRecord = { digest: m.digest, mediaType: m.mediaType, fetchedAt: 1 };
    const list: TagListRecord = { tags: ['latest', '3.20'], fetchedAt: 2 };
    await writer.putManifest(m);
    await writer.putTag(repo, 'latest', tag);
    await writer.putTagList(repo, list);

    // This store learns the records by reading them, not by writing them.
    const store = new MemoryCachedManifestStore(new RedisManifestStore(client, prefix), { maxManifests: 10 });
    expect((await store.getManifest(m.digest))?.body.equals(m.body)).toBe(true);
    expect(await store.getTag(repo, 'latest')).toEqual(tag);
    expect(await store.getTagList(repo)).toEqual(list);

    const closed = once(client, 'close');
    server.kill();
    await closed;

    const got = await store.getManifest(m.digest);
    expect(got?.body.equals(m.body)).toBe(true);
    expect(got?.mediaType).toBe(m.mediaType);
    expect(await store.getTag(repo, 'latest')).toEqual(tag);
    expect(await store.getTagList(repo)).toEqual(list);

    // Never seen: the outage is an error, not "not found".
    await expect(store.getManifest(manifest(Buffer.from('unseen')).digest)).rejects.toThrow();
    await expect(store.getTag(repo, 'edge')).rejects.toThrow();

    // A failed write is reported, and memory still serves the new record.
    const newer: TagRecord = { ...tag, fetchedAt: 99 };
    await expect(store.putTag(repo, 'latest', newer)).rejects.toThrow();
    expect(await store.getTag(repo, 'latest')).toEqual(newer);
  });

  it('remembers links it knows exist, never their absence', async () => {
    const dir = await makeTempDir('wharf-memory-');
    cleanups.push(dir.cleanup);
    const embedded = new EmbeddedManifestStore(dir.path);
    const inner = new CountingStore(embedded);
    const store = new MemoryCachedManifestStore(inner, { maxManifests: 2 });
    const repo = { upstream: 'docker.io', repository: 'library/alpine' };
    const d = `sha256:${'b'.repeat(64)}`;
    expect(store.peekLink(repo, d)).toBe(false);
    expect(await store.hasLink(repo, d)).toBe(false);
    // Another process (the main thread, another replica) adds the link: the next read sees it.
    await embedded.putLinks(repo, [d]);
    expect(await store.hasLink(repo, d)).toBe(true);
    expect(inner.linkReads).toBe(2);
    expect(store.peekLink(repo, d)).toBe(true);
    expect(await store.hasLink(repo, d)).toBe(true);
    expect(inner.linkReads).toBe(2);
    expect(store.peekLink({ ...repo, repository: 'library/other' }, d)).toBe(false);
  });

  it('holds at most maxManifests manifests', async () => {
    const dir = await makeTempDir('wharf-memory-');
    cleanups.push(dir.cleanup);
    const inner = new CountingStore(new EmbeddedManifestStore(dir.path));
    const store = new MemoryCachedManifestStore(inner, { maxManifests: 2 });
    const [m1, m2, m3] = [1, 2, 3].map((n) => manifest(Buffer.from(`{"n":${n}}`)));
    for (const m of [m1!, m2!, m3!]) await store.putManifest(m);

    expect((await store.getManifest(m3!.digest))?.body.equals(m3!.body)).toBe(true);
    expect((await store.getManifest(m2!.digest))?.body.equals(m2!.body)).toBe(true);
    expect(inner.manifestReads).toBe(0);
    // m1 was evicted: read from the inner store, then cached again (evicting m3).
    expect((await store.getManifest(m1!.digest))?.body.equals(m1!.body)).toBe(true);
    expect(inner.manifestReads).toBe(1);
    await store.getManifest(m1!.digest);
    expect(inner.manifestReads).toBe(1);
    await store.getManifest(m3!.digest);
    expect(inner.manifestReads).toBe(2);
  });

  it('holds at most maxBytes of manifest bodies, and still serves bigger ones from the inner store', async () => {
    const dir = await makeTempDir('wharf-memory-');
    cleanups.push(dir.cleanup);
    const inner = new CountingStore(new EmbeddedManifestStore(dir.path));
    const store = new MemoryCachedManifestStore(inner, { maxManifests: 100, maxBytes: 10_000 });
    const small = [1, 2, 3].map(() => manifest(randomBytes(4000)));
    for (const m of small) await store.putManifest(m);

    await store.getManifest(small[2]!.digest);
    await store.getManifest(small[1]!.digest);
    expect(inner.manifestReads).toBe(0);
    expect((await store.getManifest(small[0]!.digest))?.body.equals(small[0]!.body)).toBe(true);
    expect(inner.manifestReads).toBe(1);

    const big = manifest(randomBytes(20_000));
    await store.putManifest(big);
    expect((await store.getManifest(big.digest))?.body.equals(big.body)).toBe(true);
    expect((await store.getManifest(big.digest))?.body.equals(big.body)).toBe(true);
    expect(inner.manifestReads).toBe(3);
  });

  it('holds tag lists up to maxTagListBytes (by their size), and still serves bigger ones from the inner store', async () => {
    const dir = await makeTempDir('wharf-memory-');
    cleanups.push(dir.cleanup);
    const inner = new CountingStore(new EmbeddedManifestStore(dir.path));
    // 1000 tags of 60 characters: ~92 KB each as counted (characters + 32 per tag).
    const store = new MemoryCachedManifestStore(inner, { maxManifests: 10, maxTagListBytes: 200_000 });
    const list = (n: number) => ({ tags: Array.from({ length: 1000 }, (_, i) => `${n}-${i}-`.padEnd(60, 'x')), fetchedAt: n });
    const repos = [1, 2, 3].map((n) => ({ upstream: 'docker.io', repository: `library/r${n}` }));
    for (const [i, repo] of repos.entries()) await store.putTagList(repo, list(i));

    expect(await store.getTagList(repos[2]!)).toEqual(list(2));
    expect(await store.getTagList(repos[1]!)).toEqual(list(1));
    expect(inner.tagListReads).toBe(0);
    // Two fit: the first was evicted and is read from the inner store.
    expect(await store.getTagList(repos[0]!)).toEqual(list(0));
    expect(inner.tagListReads).toBe(1);

    const huge = { upstream: 'docker.io', repository: 'library/huge' };
    const hugeList = { tags: Array.from({ length: 5000 }, (_, i) => `h${i}`.padEnd(60, 'x')), fetchedAt: 9 };
    await store.putTagList(huge, hugeList);
    expect(await store.getTagList(huge)).toEqual(hugeList);
    expect(await store.getTagList(huge)).toEqual(hugeList);
    expect(inner.tagListReads).toBe(3);
  });

  it('reports the inner backend', async () => {
    const dir = await makeTempDir('wharf-memory-');
    cleanups.push(dir.cleanup);
    expect(new MemoryCachedManifestStore(new EmbeddedManifestStore(dir.path), { maxManifests: 1 }).backend).toBe('embedded');
  });
});

/** A working store that counts the manifest reads reaching it. */
class CountingStore implements ManifestStore {
  readonly backend: string;
  readonly #inner: ManifestStore;
  manifestReads = 0;
  tagListReads = 0;
  linkReads = 0;

  constructor(inner: ManifestStore) {
    this.#inner = inner;
    this.backend = inner.backend;
  }

  getManifest(digest: string): Promise<StoredManifest | undefined> {
    this.manifestReads++;
    return this.#inner.getManifest(digest);
  }
  putManifest(m: StoredManifest): Promise<void> {
    return this.#inner.putManifest(m);
  }
  getTag(repo: RepoKey, tag: string): Promise<TagRecord | undefined> {
    return this.#inner.getTag(repo, tag);
  }
  putTag(repo: RepoKey, tag: string, record: TagRecord): Promise<void> {
    return this.#inner.putTag(repo, tag, record);
  }
  getTagList(repo: RepoKey): Promise<TagListRecord | undefined> {
    this.tagListReads++;
    return this.#inner.getTagList(repo);
  }
  putTagList(repo: RepoKey, record: TagListRecord): Promise<void> {
    return this.#inner.putTagList(repo, record);
  }
  deleteTag(repo: RepoKey, tag: string): Promise<void> {
    return this.#inner.deleteTag(repo, tag);
  }
  deleteManifest(digest: string): Promise<void> {
    return this.#inner.deleteManifest(digest);
  }
  putLinks(repo: RepoKey, digests: readonly string[]): Promise<void> {
    return this.#inner.putLinks(repo, digests);
  }
  hasLink(repo: RepoKey, digest: string): Promise<boolean> {
    this.linkReads++;
    return this.#inner.hasLink(repo, digest);
  }
  deleteLinks(repo: RepoKey, digests: readonly string[]): Promise<void> {
    return this.#inner.deleteLinks(repo, digests);
  }
  scanLinks(): AsyncIterable<{ repo: RepoKey; digest: string }> {
    return this.#inner.scanLinks();
  }
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
  close(): Promise<void> {
    return this.#inner.close();
  }
}
