// `wharf import`: loads a bundle (OCI image layout in a tar, as `wharf export` writes it) into
// this wharf's cache. Every manifest and blob is hashed against its name before it is stored;
// a tag is created (and the image linked to its repository) only for an image whose manifests
// and blobs are all there. A corrupt or
// truncated bundle therefore loads nothing wrong, and the summary says what was bad.
import type { Readable } from 'node:stream';
import { extract as tarExtract } from 'tar-stream';
import type { Cache } from './open-cache.ts';
import { DigestMismatchError } from '../cache/blob-store.ts';
import { manifestRefs } from '../oci/manifest-refs.ts';
import { digestOf, parseDigest } from '../oci/digest.ts';
import { checkManifest } from '../oci/manifest-check.ts';
import { linkManifest } from '../cache/manifest-links.ts';
import { BUNDLE_ANNOTATIONS, MAX_MANIFEST_ENTRY_BYTES } from './bundle-format.ts';

export interface ImportSummary {
  readonly tags: readonly string[];
  readonly manifests: number;
  readonly blobs: number;
  readonly bytes: number;
  readonly alreadyCached: number;
  /** Bad content: rejected, and the images that needed it got no tag. */
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

interface IndexEntry {
  readonly digest: string;
  readonly mediaType: string | undefined;
  readonly annotations: Record<string, string>;
}

export async function importBundle(input: Readable, cache: Cache, log: (line: string) => void): Promise<ImportSummary> {
  const state = new ImportState(cache);
  const tar = tarExtract();
  const consumed = (async () => {
    for await (const entry of tar) {
      const { name, size = 0 } = entry.header;
      if (entry.header.type !== 'file') {
        entry.resume();
        continue;
      }
      await state.take(name.replace(/^\.\//, ''), size, entry as AsyncIterable<Buffer> & { resume(): void });
    }
  })();
  input.pipe(tar);
  input.once('error', (err) => tar.destroy(err));
  try {
    await consumed;
  } catch (err) {
    state.errors.push(`the bundle is truncated or not a tar file: ${(err as Error).message}`);
  }
  await state.finish(log);
  return state.summary();
}

class ImportState {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  readonly #cache: Cache;
  #index: IndexEntry[] | undefined;
  #manifestsFirst = false;
  /** Digests known to be manifests, with the media type their parent gave. */
  readonly #manifestTypes = new Map<string, string | undefined>();
  /** Small entries that arrived before anything said whether they are manifests. */
  readonly #pending = new Map<string, Buffer>();
  readonly #rejected = new Set<string>();
  readonly #tags: string[] = [];
  #manifests = 0;
  #blobs = 0;
  #bytes = 0;
  #alreadyCached = 0;

  constructor(cache: Cache) {
    this.#cache = cache;
  }

  async take(name: string, size: number, body: AsyncIterable<Buffer> & { resume(): void }): Promise<void> {
    if (name === 'oci-layout') return void (await readAll(body, 4096));
    if (name === 'index.json') return this.#takeIndex(await readAll(body, MAX_MANIFEST_ENTRY_BYTES));
    const digest = digestOfPath(name);
    if (!digest) {
      this.warnings.push(`${name}: not part of an OCI layout; skipped`);
      return void body.resume();
    }
    if (this.#manifestTypes.has(digest)) return this.#storeManifest(digest, await readAll(body, MAX_MANIFEST_ENTRY_BYTES));
    if (this.#manifestsFirst || size > MAX_MANIFEST_ENTRY_BYTES) return this.#storeBlob(digest, body);
    this.#pending.set(digest, await readAll(body, MAX_MANIFEST_ENTRY_BYTES));
  }

  async finish(log: (line: string) => void): Promise<void> {
    // Whatever is still pending: manifests if something refers to them as such, else blobs.
    for (let progress = true; progress; ) {
      progress = false;
      for (const [digest, body] of this.#pending) {
        if (!this.#manifestTypes.has(digest)) continue;
        this.#pending.delete(digest);
        await this.#storeManifest(digest, body);
        progress = true;
      }
    }
    for (const [digest, body] of this.#pending) await this.#storeBlob(digest, (async function* () { yield body; })());
    if (!this.#index) {
      this.errors.push('the bundle has no index.json: no image can be tagged');
      return;
    }
    for (const entry of this.#index) await this.#tag(entry, log);
  }

  summary(): ImportSummary {
    return { tags: this.#tags, manifests: this.#manifests, blobs: this.#blobs, bytes: this.#bytes, alreadyCached: this.#alreadyCached, errors: this.errors, warnings: this.warnings };
  }

  async #takeIndex(body: Buffer): Promise<void> {
    let doc: { manifests?: Array<{ digest?: unknown; mediaType?: unknown; annotations?: Record<string, string> }>; annotations?: Record<string, string> };
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      this.errors.push('index.json is not JSON');
      return;
    }
    this.#index = (doc.manifests ?? []).flatMap((m) =>
      typeof m.digest === 'string' ? [{ digest: m.digest, mediaType: typeof m.mediaType === 'string' ? m.mediaType : undefined, annotations: m.annotations ?? {} }] : [],
    );
    for (const entry of this.#index) this.#manifestTypes.set(entry.digest, entry.mediaType);
    // wharf's own bundles put every manifest before any blob: the rest can stream to disk.
    this.#manifestsFirst = doc.annotations?.[BUNDLE_ANNOTATIONS.order] === 'manifests-first';
    for (const [digest, body] of this.#pending) {
      if (!this.#manifestTypes.has(digest)) continue;
      this.#pending.delete(digest);
      await this.#storeManifest(digest, body);
    }
  }

  async #storeManifest(digest: string, body: Buffer): Promise<void> {
    const { algorithm } = parseDigest(digest);
    const actual = digestOf(body, algorithm);
    if (actual !== digest) {
      this.#reject(digest, `manifest ${digest}: its bytes hash to ${actual}; not imported`);
      return;
    }
    // The bundle's word for the type goes through the same check as an upstream's Content-Type.
    const check = checkManifest(this.#manifestTypes.get(digest), body);
    if (!check.ok) {
      this.#reject(digest, `manifest ${digest}: ${check.why}; not imported`);
      return;
    }
    await this.#cache.manifestStore.putManifest({ digest, mediaType: check.mediaType, body });
    this.#manifests++;
    for (const child of manifestRefs(body).manifests) if (!this.#manifestTypes.has(child.digest)) this.#manifestTypes.set(child.digest, child.mediaType);
  }

  async #storeBlob(digest: string, body: AsyncIterable<Buffer>): Promise<void> {
    if (await this.#cache.blobStore.stat(digest)) {
      for await (const _ of body); // drain
      this.#alreadyCached++;
      return;
    }
    const writer = await this.#cache.blobStore.createWriter(digest);
    try {
      for await (const chunk of body) await writer.write(chunk);
      const info = await writer.commit();
      this.#blobs++;
      this.#bytes += info.size;
    } catch (err) {
      await writer.abort().catch(() => undefined);
      if (err instanceof DigestMismatchError) this.#reject(digest, `blob ${digest}: its bytes hash to ${err.actual}; not imported`);
      else throw err;
    }
  }

  #reject(digest: string, why: string): void {
    this.#rejected.add(digest);
    this.errors.push(why);
  }

  /** Creates the image's tag if everything it needs is in the cache now. */
  async #tag(entry: IndexEntry, log: (line: string) => void): Promise<void> {
    const { upstream, repository, tag } = { upstream: entry.annotations[BUNDLE_ANNOTATIONS.upstream], repository: entry.annotations[BUNDLE_ANNOTATIONS.repository], tag: entry.annotations[BUNDLE_ANNOTATIONS.tag] };
    const name = entry.annotations['org.opencontainers.image.ref.name'] ?? entry.digest;
    const missing = await this.#missingFor(entry.digest);
    if (missing.length > 0) {
      this.errors.push(`${name}: incomplete (${missing.length} missing or bad, e.g. ${missing[0]}); not tagged`);
      return;
    }
    if (!upstream || !repository) {
      this.warnings.push(`${name}: imported by digest only, under no repository (the bundle names no upstream and repository)`);
      return;
    }
    let repo;
    try {
      repo = this.#cache.locate(`${upstream}/${repository}${tag ? `:${tag}` : `@${entry.digest}`}`).repo;
    } catch (err) {
      this.errors.push(`${name}: ${(err as Error).message}; not tagged`);
      return;
    }
    const top = (await this.#cache.manifestStore.getManifest(entry.digest))!;
    // The bundle says which repository the image is from: its content is served under that one.
    await linkManifest(this.#cache.manifestStore, repo, top);
    // A signature or SBOM (a manifest with a subject) is listed among its subject's referrers there.
    await this.#cache.recordReferrer(repo, top);
    if (!tag) {
      this.warnings.push(`${name}: imported by digest only (the bundle names no tag)`);
      return;
    }
    await this.#cache.manifestStore.putTag(repo, tag, { digest: top.digest, mediaType: top.mediaType, fetchedAt: Date.now() });
    this.#tags.push(name);
    log(`${name}: tagged`);
  }

  /** What an image lacks: its manifest, or blobs of its image manifests. Absent platforms of an index are a warning. */
  async #missingFor(digest: string): Promise<string[]> {
    if (this.#rejected.has(digest)) return [digest];
    const top = await this.#cache.manifestStore.getManifest(digest);
    if (!top) return [digest];
    const refs = manifestRefs(top.body);
    const images = refs.manifests.length > 0 ? [] : [top];
    for (const child of refs.manifests) {
      const manifest = this.#rejected.has(child.digest) ? undefined : await this.#cache.manifestStore.getManifest(child.digest);
      if (manifest) images.push(manifest);
      else this.warnings.push(`${digest}: platform manifest ${child.digest} is not in the bundle or the cache`);
    }
    if (refs.manifests.length > 0 && images.length === 0) return refs.manifests.map((m) => m.digest);
    const missing: string[] = [];
    for (const image of images) {
      for (const blob of manifestRefs(image.body).blobs) if (this.#rejected.has(blob) || !(await this.#cache.blobStore.stat(blob))) missing.push(blob);
    }
    return missing;
  }
}

function digestOfPath(name: string): string | undefined {
  const m = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(name);
  if (!m) return undefined;
  try {
    return parseDigest(`${m[1]}:${m[2]}`).value;
  } catch {
    return undefined;
  }
}

async function readAll(body: AsyncIterable<Buffer>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new Error(`an entry is larger than ${limit} bytes where a small one was expected`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
