// A data dir holding many cached items for `npm run bench:scale`, written through wharf's own
// store classes (the disk blob store, the embedded manifest store, the link rules), so the
// layout and record formats are exactly what `wharf serve` reads, not a copy of them. Filling
// 100 000 blobs through the proxy would take the better part of an hour here; this takes seconds.
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createDiskBlobStore } from '../src/cache/disk-blob-store.ts';
import { EmbeddedManifestStore } from '../src/cache/embedded-manifest-store.ts';
import { linkManifest } from '../src/cache/manifest-links.ts';
import { linkTaggedImagesOnce, TAG_LINKS_MARKER } from '../src/cache/link-tagged-once.ts';
import type { RepoKey } from '../src/cache/manifest-store.ts';

export const UPSTREAM = 'docker.io';
/** Tags per repository: a cache holds many repositories of a few tags each. */
const TAGS_PER_REPOSITORY = 100;
/** Items written at once: enough to keep the thread pool busy. */
const CONCURRENCY = 32;
const DAY_MS = 24 * 3600 * 1000;
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

export interface ScaleCache {
  readonly blobs: number;
  readonly blobBytes: number;
  readonly tags: number;
  /** Request paths of every tag, /v2/<repository>/manifests/<tag>. */
  readonly tagPaths: readonly string[];
}

/** The repository and tag of tag i. */
export function tagOf(i: number): { repo: RepoKey; tag: string } {
  return { repo: { upstream: UPSTREAM, repository: `bench/r${Math.floor(i / TAGS_PER_REPOSITORY)}` }, tag: `t${i}` };
}

/**
 * `blobs` layer blobs of 1-4 KiB, and `tags` tags (tags ≤ blobs), tag i an image of its own
 * whose one layer is blob i (all share one config blob). Blobs get last-use times spread over
 * the past month in an order unrelated to their names, so an eviction pass has an LRU order to
 * sort and none of them is inside the eviction grace period. Tags are fresh (fetched now).
 */
export async function populate(dataDir: string, blobs: number, tags: number): Promise<ScaleCache> {
  // No fsync: the bench's data dir need not survive a power loss; the files are the same.
  const blobStore = createDiskBlobStore(dataDir, { fsync: false });
  const manifests = new EmbeddedManifestStore(join(dataDir, 'manifests'));
  // What wharf's first start on an empty data dir does: nothing to link, the marker written.
  await mkdir(dataDir, { recursive: true });
  await linkTaggedImagesOnce(manifests, join(dataDir, TAG_LINKS_MARKER));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const configDigest = await putBlob(blobStore, config);
  let blobBytes = config.length;
  const layers = new Array<{ digest: string; size: number }>(blobs);
  await inParallel(blobs, async (i) => {
    const body = blobBody(i);
    layers[i] = { digest: await putBlob(blobStore, body), size: body.length };
  });
  for (const l of layers) blobBytes += l.size;
  const now = Date.now();
  await inParallel(blobs, (i) => blobStore.touch(layers[i]!.digest, now - DAY_MS - scatter(i, blobs) * ((30 * DAY_MS) / blobs)));
  const tagPaths = new Array<string>(tags);
  await inParallel(tags, async (i) => {
    const layer = layers[i]!;
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST_TYPE,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
      }),
    );
    const manifest = { digest: sha256(body), mediaType: MANIFEST_TYPE, body };
    const { repo, tag } = tagOf(i);
    // What the manifest service does with a verified manifest fetched by tag.
    await manifests.putManifest(manifest);
    await linkManifest(manifests, repo, manifest);
    await manifests.putTag(repo, tag, { digest: manifest.digest, mediaType: MANIFEST_TYPE, fetchedAt: now });
    tagPaths[i] = `/v2/${repo.repository}/manifests/${tag}`;
  });
  return { blobs: blobs + 1, blobBytes, tags, tagPaths };
}

async function putBlob(store: ReturnType<typeof createDiskBlobStore>, body: Buffer): Promise<string> {
  const digest = sha256(body);
  const writer = await store.createWriter(digest);
  await writer.write(body);
  await writer.commit();
  return digest;
}

/** 1-4 KiB, unique to i. */
function blobBody(i: number): Buffer {
  const body = Buffer.alloc(1024 + ((i * 7919) % 3072), 0x61 + (i % 26));
  body.write(`wharf scale bench blob ${i}\n`);
  return body;
}

/** A permutation of 0..n-1 (n > 0) that does not follow i: multiplication by a prime coprime with n. */
function scatter(i: number, n: number): number {
  const prime = [1_000_003, 999_983, 7919].find((p) => n % p !== 0)!;
  return (i * prime) % n;
}

function sha256(body: Buffer): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

async function inParallel(count: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker));
}
