// The start's link scan for caches older than repository links runs once per data dir: a
// complete run links the tags and leaves its marker, the next start skips the scan, and a run
// that fails leaves no marker, so it is done again.
import { createHash } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedManifestStore } from '../../src/cache/embedded-manifest-store.ts';
import { linkTaggedImagesOnce, TAG_LINKS_MARKER } from '../../src/cache/link-tagged-once.ts';
import type { ManifestStore, StoredManifest } from '../../src/cache/manifest-store.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

const dirs: TempDir[] = [];
afterEach(async () => Promise.all(dirs.splice(0).map((d) => d.cleanup())));

const MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function manifest(name: string): StoredManifest {
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(`${name} config`), size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(`${name} layer`), size: 3 }],
    }),
  );
  return { digest: sha(body), mediaType: MEDIA_TYPE, body };
}

/** A tag as an older wharf left it: manifest and tag record, no links. */
async function unlinkedTag(store: ManifestStore, repository: string, m: StoredManifest): Promise<{ upstream: string; repository: string }> {
  const repo = { upstream: 'docker.io', repository };
  await store.putManifest(m);
  await store.putTag(repo, 'latest', { digest: m.digest, mediaType: MEDIA_TYPE, fetchedAt: Date.now() });
  return repo;
}

async function setUp(): Promise<{ store: EmbeddedManifestStore; marker: string }> {
  const dir = await makeTempDir('wharf-link-once-');
  dirs.push(dir);
  return { store: new EmbeddedManifestStore(join(dir.path, 'manifests')), marker: join(dir.path, TAG_LINKS_MARKER) };
}

describe('linkTaggedImagesOnce', () => {
  it('links the tags of an old cache once, then skips the scan', async () => {
    const { store, marker } = await setUp();
    const first = manifest('first');
    const repo = await unlinkedTag(store, 'library/first', first);
    expect(await linkTaggedImagesOnce(store, marker)).toBe(1);
    expect(await store.hasLink(repo, first.digest)).toBe(true);
    await access(marker);

    // Written after the marker (only an older wharf would): the scan no longer runs to find it.
    const later = manifest('later');
    const laterRepo = await unlinkedTag(store, 'library/later', later);
    expect(await linkTaggedImagesOnce(store, marker)).toBeUndefined();
    expect(await store.hasLink(laterRepo, later.digest)).toBe(false);
  });

  it('leaves no marker when the scan fails, so the next start scans again', async () => {
    const { store, marker } = await setUp();
    const m = manifest('one');
    const repo = await unlinkedTag(store, 'library/one', m);
    const failing = {
      scanTags: () => store.scanTags(),
      hasLink: store.hasLink.bind(store),
      getManifest: store.getManifest.bind(store),
      putLinks: () => Promise.reject(new Error('disk full')),
    };
    await expect(linkTaggedImagesOnce(failing, marker)).rejects.toThrow('disk full');
    await expect(access(marker)).rejects.toThrow();
    expect(await linkTaggedImagesOnce(store, marker)).toBe(1);
    expect(await store.hasLink(repo, m.digest)).toBe(true);
  });
});
