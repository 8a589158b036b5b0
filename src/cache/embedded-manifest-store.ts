// The default ManifestStore: plain files under one directory, so it needs no server and
// survives restarts.
//
//   manifests/<alg>/<first 2 hex>/<hex>       "<mediaType>\n" then the exact body
//   repos/<upstream>/<repository>/_tags/<tag>.json   {digest, mediaType, fetchedAt}
//   repos/<upstream>/<repository>/_taglist.json      {tags, fetchedAt}
//   repos/<upstream>/<repository>/_links/<alg>/<hex> empty: the repository references the digest
//   repos/<upstream>/<repository>/_referrers/<alg>/<hex>.json  referrers of that subject digest
//   tmp/                                      temp files, renamed into place (atomic writes)
//
// The "_" entries cannot collide with repository components (those start with [a-z0-9]), so a
// repository "a" and a repository "a/_tags" or "a.json/b" never share a file.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
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
  encodeTagListRecordChunks,
  encodeTagRecord,
} from './store-records.ts';
import { readWholeFile } from './read-whole-file.ts';

export class EmbeddedManifestStore implements ManifestStore {
  readonly backend = 'embedded';
  readonly #dir: string;
  readonly #tmpDir: string;

  constructor(dir: string) {
    this.#dir = resolve(dir);
    this.#tmpDir = join(this.#dir, 'tmp');
  }

  async getManifest(digest: string): Promise<StoredManifest | undefined> {
    const file = await readIfPresent(this.#manifestPath(digest));
    return file && decodeManifest(digest, file);
  }

  async putManifest(manifest: StoredManifest): Promise<void> {
    const path = this.#manifestPath(manifest.digest);
    const value = encodeManifest(manifest);
    // Immutable by digest: a present file already holds these bytes.
    if (await exists(path)) return;
    // Synced before the rename: a manifest file is either absent or complete after a crash.
    await this.#writeAtomic(path, value, true);
  }

  async getTag(repo: RepoKey, tag: string): Promise<TagRecord | undefined> {
    const file = await readIfPresent(this.#tagPath(repo, tag));
    return file && decodeTagRecord(file.toString('utf8'));
  }

  async putTag(repo: RepoKey, tag: string, record: TagRecord): Promise<void> {
    const json = encodeTagRecord(record);
    // Tags are cheap to lose (re-resolved upstream) and unparsable ones read as missing: no fsync.
    await this.#writeAtomic(this.#tagPath(repo, tag), Buffer.from(json), false);
  }

  async getTagList(repo: RepoKey): Promise<TagListRecord | undefined> {
    const file = await readIfPresent(this.#tagListPath(repo));
    return file && decodeTagListRecord(file.toString('utf8'));
  }

  async putTagList(repo: RepoKey, record: TagListRecord): Promise<void> {
    // Written in pieces: a list of 100 000 tags is never one string or one buffer.
    await this.#writeAtomic(this.#tagListPath(repo), () => encodeTagListRecordChunks(record), false);
  }

  async deleteTag(repo: RepoKey, tag: string): Promise<void> {
    await rm(this.#tagPath(repo, tag), { force: true });
  }

  async deleteManifest(digest: string): Promise<void> {
    await rm(this.#manifestPath(digest), { force: true });
  }

  async putLinks(repo: RepoKey, digests: readonly string[]): Promise<void> {
    const paths = digests.map((d) => this.#linkPath(repo, d));
    // Empty files, created in place: a link is whole or absent, and losing one costs a HEAD.
    const create = (path: string) => writeFile(path, '', { flag: 'a' });
    await Promise.all(
      paths.map((path) =>
        create(path).catch(async (err: unknown) => {
          if (!isMissing(err)) throw err;
          await mkdir(dirname(path), { recursive: true });
          await create(path);
        }),
      ),
    );
  }

  async hasLink(repo: RepoKey, digest: string): Promise<boolean> {
    return exists(this.#linkPath(repo, digest));
  }

  async deleteLinks(repo: RepoKey, digests: readonly string[]): Promise<void> {
    await Promise.all(digests.map((d) => rm(this.#linkPath(repo, d), { force: true })));
  }

  async getReferrers(repo: RepoKey, subject: string): Promise<ReferrersRecord | undefined> {
    const file = await readIfPresent(this.#referrersPath(repo, subject));
    return file && decodeReferrersRecord(file.toString('utf8'));
  }

  async putReferrers(repo: RepoKey, subject: string, record: ReferrersRecord): Promise<void> {
    // Like tags: cheap to lose (asked again upstream), unparsable reads as missing; no fsync.
    await this.#writeAtomic(this.#referrersPath(repo, subject), Buffer.from(encodeReferrersRecord(record)), false);
  }

  async *scanLinks(): AsyncIterable<{ repo: RepoKey; digest: string }> {
    for await (const { repo, dir } of this.#repoDirs()) {
      const links = join(dir, '_links');
      for (const algorithm of await listDir(links)) {
        for (const hex of await listDir(join(links, algorithm))) yield { repo, digest: `${algorithm}:${hex}` };
      }
    }
  }

  async *scanManifests(): AsyncIterable<string> {
    const root = join(this.#dir, 'manifests');
    for (const algorithm of await listDir(root)) {
      for (const shard of await listDir(join(root, algorithm))) {
        for (const hex of await listDir(join(root, algorithm, shard))) yield `${algorithm}:${hex}`;
      }
    }
  }

  async *scanTags(): AsyncIterable<{ repo: RepoKey; tag: string; record: TagRecord }> {
    for await (const { repo, dir } of this.#repoDirs()) {
      for (const file of await listDir(join(dir, '_tags'))) {
        const record = decodeTagRecord((await readIfPresent(join(dir, '_tags', file)))?.toString('utf8') ?? '');
        if (record && file.endsWith('.json')) yield { repo, tag: file.slice(0, -'.json'.length), record };
      }
    }
  }

  /** Every directory under repos/ that may hold a repository's records, with its key. */
  async *#repoDirs(): AsyncIterable<{ repo: RepoKey; dir: string }> {
    const reposRoot = join(this.#dir, 'repos');
    for (const upstream of await listDir(reposRoot)) yield* this.#repoTree(upstream, join(reposRoot, upstream), []);
  }

  async *#repoTree(upstream: string, dir: string, path: string[]): AsyncIterable<{ repo: RepoKey; dir: string }> {
    if (path.length > 0) yield { repo: { upstream, repository: path.join('/') }, dir };
    for (const name of await listDir(dir)) {
      if (!name.startsWith('_')) yield* this.#repoTree(upstream, join(dir, name), [...path, name]);
    }
  }

  /** Deletes temp files a crash left behind; call once at start, before any put. */
  async removeTempFiles(): Promise<number> {
    const names = await readdir(this.#tmpDir).catch((err: unknown) => {
      if (isMissing(err)) return [];
      throw err;
    });
    await Promise.all(names.map((name) => rm(join(this.#tmpDir, name), { force: true, recursive: true })));
    return names.length;
  }

  async ping(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    await access(this.#dir, constants.W_OK);
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  #manifestPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.#dir, 'manifests', algorithm, hex.slice(0, 2), hex);
  }

  #repoDir(repo: RepoKey): string {
    assertRepoKey(repo);
    return join(this.#dir, 'repos', repo.upstream, ...repo.repository.split('/'));
  }

  #tagPath(repo: RepoKey, tag: string): string {
    assertTag(tag);
    return join(this.#repoDir(repo), '_tags', `${tag}.json`);
  }

  #linkPath(repo: RepoKey, digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.#repoDir(repo), '_links', algorithm, hex);
  }

  #referrersPath(repo: RepoKey, subject: string): string {
    const { algorithm, hex } = parseDigest(subject);
    return join(this.#repoDir(repo), '_referrers', algorithm, `${hex}.json`);
  }

  #tagListPath(repo: RepoKey): string {
    return join(this.#repoDir(repo), '_taglist.json');
  }

  /** data: the bytes, or a source of the text in pieces (called again if the write is retried). */
  async #writeAtomic(path: string, data: Buffer | (() => Iterable<string>), sync: boolean): Promise<void> {
    const temp = join(this.#tmpDir, randomBytes(8).toString('hex'));
    await writeTemp(temp, data, sync).catch(async (err: unknown) => {
      if (!isMissing(err)) throw err;
      await mkdir(this.#tmpDir, { recursive: true });
      await writeTemp(temp, data, sync);
    });
    try {
      await rename(temp, path).catch(async (err: unknown) => {
        if (!isMissing(err)) throw err;
        await mkdir(dirname(path), { recursive: true });
        await rename(temp, path);
      });
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }
}

async function writeTemp(path: string, source: Buffer | (() => Iterable<string>), sync: boolean): Promise<void> {
  const data = Buffer.isBuffer(source) ? source : source();
  if (!sync) {
    await writeFile(path, data, { flag: 'wx' });
    return;
  }
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readWholeFile(path);
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}
