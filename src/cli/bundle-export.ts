// `wharf export`: cached images as one tar in OCI image layout (oci-layout, index.json, blobs),
// for carrying into a network with no upstream. Every byte is hashed again on the way out, so a
// bundle never carries a blob that does not match its name. index.json and manifests come
// before the blobs they refer to, so `wharf import` can place each entry as it streams by.
import { createHash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Pack } from 'tar-stream';
import type { Cache } from './open-cache.ts';
import type { StoredManifest } from '../cache/manifest-store.ts';
import { readChunks } from '../cache/blob-store.ts';
import { manifestRefs } from '../oci/manifest-refs.ts';
import { parseDigest } from '../oci/digest.ts';
import { MediaType } from '../oci/media-types.ts';
import { BUNDLE_ANNOTATIONS } from './bundle-format.ts';

export interface ExportSummary {
  readonly images: number;
  readonly manifests: number;
  readonly blobs: number;
  readonly bytes: number;
  /** References that could not be exported, and why. */
  readonly failed: readonly string[];
  /** Exported, but not whole: platforms of an index that were never cached. */
  readonly warnings: readonly string[];
}

interface PlannedImage {
  readonly text: string;
  readonly top: StoredManifest;
  readonly upstream: string;
  readonly repository: string;
  readonly tag: string | undefined;
  readonly manifests: StoredManifest[];
  readonly blobs: Set<string>;
}

export class ExportError extends Error {}

export async function exportBundle(refs: readonly string[], cache: Cache, out: Writable, log: (line: string) => void): Promise<ExportSummary> {
  const failed: string[] = [];
  const warnings: string[] = [];
  const images: PlannedImage[] = [];
  for (const text of refs) {
    try {
      images.push(await planImage(text, cache, warnings));
    } catch (err) {
      // ExportErrors name their image; a store's error (Redis, S3 away) does not.
      failed.push(err instanceof ExportError ? err.message : `${text}: ${(err as Error).message}`);
    }
  }
  if (images.length === 0) throw new ExportError(`nothing to export:\n  ${failed.join('\n  ')}`);

  const tar = tarPack();
  const written = pipeline(tar, out);
  await addEntry(tar, 'oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  await addEntry(tar, 'index.json', Buffer.from(JSON.stringify(layoutIndex(images), null, 2)));
  const done = new Set<string>();
  let bytes = 0;
  let manifests = 0;
  let blobs = 0;
  for (const image of images) {
    for (const manifest of image.manifests) {
      if (done.has(manifest.digest)) continue;
      done.add(manifest.digest);
      await addEntry(tar, blobPath(manifest.digest), manifest.body);
      manifests++;
    }
  }
  for (const image of images) {
    for (const digest of image.blobs) {
      if (done.has(digest)) continue;
      done.add(digest);
      bytes += await addBlob(tar, cache, digest);
      blobs++;
    }
    log(`${image.text}: ${image.manifests.length} manifests, ${image.blobs.size} blobs`);
  }
  tar.finalize();
  await written;
  return { images: images.length, manifests, blobs, bytes, failed, warnings };
}

async function planImage(text: string, cache: Cache, warnings: string[]): Promise<PlannedImage> {
  const { repo, reference } = cache.locate(text);
  const digest = reference.digest ?? (await cache.manifestStore.getTag(repo, reference.tag!))?.digest;
  if (!digest) throw new ExportError(`${text}: not cached (pull or warm it first)`);
  const top = await cache.manifestStore.getManifest(digest);
  if (!top) throw new ExportError(`${text}: manifest ${digest} is not cached`);
  const manifests: StoredManifest[] = [top];
  const blobs = new Set<string>();
  const children = manifestRefs(top.body).manifests;
  for (const child of children) {
    const manifest = await cache.manifestStore.getManifest(child.digest);
    // A platform never pulled is left out; the others still pull from the bundle.
    if (!manifest) {
      warnings.push(`${text}: platform ${platformText(child.platform)} (${child.digest}) is not cached; exported without it`);
      continue;
    }
    manifests.push(manifest);
  }
  for (const manifest of manifests) for (const blob of manifestRefs(manifest.body).blobs) blobs.add(blob);
  for (const blob of blobs) {
    if (!(await cache.blobStore.stat(blob))) throw new ExportError(`${text}: blob ${blob} is not cached (pull or warm the image first)`);
  }
  return { text, top, upstream: repo.upstream, repository: repo.repository, tag: reference.tag, manifests, blobs };
}

function layoutIndex(images: readonly PlannedImage[]) {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    annotations: { [BUNDLE_ANNOTATIONS.order]: 'manifests-first' },
    manifests: images.map((image) => ({
      mediaType: image.top.mediaType,
      digest: image.top.digest,
      size: image.top.body.length,
      annotations: {
        'org.opencontainers.image.ref.name': image.text,
        [BUNDLE_ANNOTATIONS.upstream]: image.upstream,
        [BUNDLE_ANNOTATIONS.repository]: image.repository,
        ...(image.tag !== undefined ? { [BUNDLE_ANNOTATIONS.tag]: image.tag } : {}),
      },
    })),
  };
}

export function blobPath(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

function addEntry(tar: Pack, name: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => tar.entry({ name, size: body.length, mode: 0o644 }, body, (err) => (err ? reject(err) : resolve())));
}

/** Streams a cached blob into the tar, hashing it; a mismatch aborts the export. */
async function addBlob(tar: Pack, cache: Cache, digest: string): Promise<number> {
  const info = await cache.blobStore.stat(digest);
  if (!info) throw new ExportError(`blob ${digest} vanished from the cache during the export`);
  const { algorithm } = parseDigest(digest);
  const hash = createHash(algorithm);
  const entry = tar.entry({ name: blobPath(digest), size: info.size, mode: 0o644 });
  const reader = await info.open();
  if (!reader) throw new ExportError(`blob ${digest} vanished from the cache during the export`);
  try {
    const file = Readable.from(readChunks(reader, info.size));
    file.on('data', (chunk: Buffer) => hash.update(chunk));
    await pipeline(file, entry);
  } finally {
    await reader.close();
  }
  const actual = `${algorithm}:${hash.digest('hex')}`;
  if (actual !== digest) throw new ExportError(`cached blob ${digest} is corrupt (its bytes hash to ${actual}); remove it with wharf gc`);
  return info.size;
}

function platformText(p: { os?: string; architecture?: string; variant?: string } | undefined): string {
  return [p?.os, p?.architecture, p?.variant].filter(Boolean).join('/') || 'unknown';
}
