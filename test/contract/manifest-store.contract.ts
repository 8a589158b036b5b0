// The ManifestStore contract: every implementation (and every decorator stack) runs this suite.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ManifestStore, RepoKey, StoredManifest } from '../../src/cache/manifest-store.ts';

export interface ManifestStoreFixture {
  readonly store: ManifestStore;
  /**
   * Opens the same persistent data again. The suite closes the first store before calling it
   * and closes the returned store itself; cleanup() releases everything else.
   */
  readonly reopen?: () => Promise<ManifestStore>;
  cleanup(): Promise<void>;
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export function manifest(body: Buffer, mediaType = OCI_MANIFEST): StoredManifest {
  return { digest: `sha256:${createHash('sha256').update(body).digest('hex')}`, mediaType, body };
}

function jsonManifest(n: number): StoredManifest {
  // Deliberately odd formatting: stores must keep bytes, not re-serialise JSON.
  return manifest(Buffer.from(`{"schemaVersion":2,  "mediaType":"${OCI_MANIFEST}",\n "n":${n},"note":"h\u00e9llo"}\n`));
}

function expectSameManifest(got: StoredManifest | undefined, want: StoredManifest): void {
  expect(got).toBeDefined();
  expect(got!.digest).toBe(want.digest);
  expect(got!.mediaType).toBe(want.mediaType);
  expect(Buffer.isBuffer(got!.body)).toBe(true);
  expect(got!.body.byteLength).toBe(want.body.byteLength);
  expect(Buffer.compare(got!.body, want.body)).toBe(0);
}

export function manifestStoreContract(name: string, makeStore: () => Promise<ManifestStoreFixture>): void {
  describe(`ManifestStore contract: ${name}`, () => {
    let fixture: ManifestStoreFixture;
    let store: ManifestStore;
    let reopened: ManifestStore | undefined;

    const hub: RepoKey = { upstream: 'docker.io', repository: 'library/alpine' };
    const local: RepoKey = { upstream: 'localhost:5000', repository: 'library/alpine' };
    const other: RepoKey = { upstream: 'docker.io', repository: 'library/busybox' };

    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
      reopened = undefined;
    });

    afterEach(async () => {
      await reopened?.close();
      await store.close();
      await fixture.cleanup();
    });

    it('scans every manifest and tag it holds, nested and host:port names included, and deletes them', async () => {
      const collect = async <T>(it: AsyncIterable<T>) => {
        const all: T[] = [];
        for await (const x of it) all.push(x);
        return all;
      };
      expect(await collect(store.scanManifests())).toEqual([]);
      const a = jsonManifest(501);
      const b = jsonManifest(502);
      await store.putManifest(a);
      await store.putManifest(b);
      const repos: RepoKey[] = [
        { upstream: 'docker.io', repository: 'library/alpine' },
        { upstream: 'docker.io', repository: 'library' },
        { upstream: 'localhost:5001', repository: 'team/app/sub' },
      ];
      for (const [i, repo] of repos.entries()) await store.putTag(repo, `t${i}`, { digest: a.digest, mediaType: OCI_MANIFEST, fetchedAt: i });
      await store.putTagList(repos[0]!, { tags: ['t0'], fetchedAt: 1 });
      expect((await collect(store.scanManifests())).sort()).toEqual([a.digest, b.digest].sort());
      const tags = (await collect(store.scanTags())).map((t) => `${t.repo.upstream}|${t.repo.repository}|${t.tag}|${t.record.fetchedAt}`).sort();
      expect(tags).toEqual(['docker.io|library/alpine|t0|0', 'docker.io|library|t1|1', 'localhost:5001|team/app/sub|t2|2']);
      await store.deleteTag(repos[0]!, 't0');
      await store.deleteTag(repos[0]!, 'never-there');
      await store.deleteManifest(b.digest);
      expect(await store.getTag(repos[0]!, 't0')).toBeUndefined();
      expect(await store.getManifest(b.digest)).toBeUndefined();
      expect(await collect(store.scanManifests())).toEqual([a.digest]);
      expect((await collect(store.scanTags())).length).toBe(2);
    });

    it('answers a ping when usable', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('names its backend', () => {
      expect(['embedded', 'redis']).toContain(store.backend);
    });

    it('returns a manifest byte for byte with its media type', async () => {
      const m = jsonManifest(1);
      await store.putManifest(m);
      expectSameManifest(await store.getManifest(m.digest), m);
      // And again (a second read may come from another layer, e.g. memory).
      expectSameManifest(await store.getManifest(m.digest), m);
    });

    it('keeps bodies that are not UTF-8 and contain line breaks and NULs', async () => {
      const body = Buffer.from([0x0a, 0xff, 0xfe, 0x00, 0x0d, 0x0a, 0xc3, 0x28, 0x80, 0x0a, 0x0a, 0xe2, 0x82]);
      const m = manifest(body, DOCKER_MANIFEST);
      await store.putManifest(m);
      expectSameManifest(await store.getManifest(m.digest), m);
    });

    it('keeps an empty body', async () => {
      const m = manifest(Buffer.alloc(0), OCI_INDEX);
      await store.putManifest(m);
      expectSameManifest(await store.getManifest(m.digest), m);
    });

    it('keeps a large (1 MiB) body', async () => {
      const m = manifest(randomBytes(1024 * 1024 + 17), OCI_INDEX);
      await store.putManifest(m);
      expectSameManifest(await store.getManifest(m.digest), m);
    });

    it('keeps sha512-named manifests apart from sha256 ones', async () => {
      const body = Buffer.from('{"sha512":true}');
      const m512: StoredManifest = { digest: `sha512:${createHash('sha512').update(body).digest('hex')}`, mediaType: OCI_MANIFEST, body };
      const m256 = manifest(body);
      await store.putManifest(m512);
      expectSameManifest(await store.getManifest(m512.digest), m512);
      expect(await store.getManifest(m256.digest)).toBeUndefined();
    });

    it('refuses a manifest whose bytes are not its digest or whose type is not a manifest type, and holds nothing for it', async () => {
      const real = jsonManifest(7);
      const other = jsonManifest(8);
      const lying: StoredManifest = { ...real, body: other.body };
      await expect(store.putManifest(lying)).rejects.toThrow(/hash/);
      expect(await store.getManifest(real.digest)).toBeUndefined();
      const html = manifest(Buffer.from('<html><script>alert(1)</script></html>'), 'text/html');
      await expect(store.putManifest(html)).rejects.toThrow(/not a manifest type/);
      expect(await store.getManifest(html.digest)).toBeUndefined();
      const crlf = manifest(Buffer.from('{}'), `${OCI_MANIFEST}\r\nX-Evil: 1`);
      await expect(store.putManifest(crlf)).rejects.toThrow(/not a manifest type/);
      expect(await store.getManifest(crlf.digest)).toBeUndefined();
    });

    it('answers undefined for what it does not hold', async () => {
      expect(await store.getManifest(jsonManifest(404).digest)).toBeUndefined();
      expect(await store.getTag(hub, 'latest')).toBeUndefined();
      expect(await store.getTagList(hub)).toBeUndefined();
    });

    it('stores tag records and returns exactly what was put', async () => {
      const m = jsonManifest(2);
      await store.putTag(hub, 'latest', { digest: m.digest, mediaType: m.mediaType, fetchedAt: 1_700_000_000_123 });
      expect(await store.getTag(hub, 'latest')).toEqual({ digest: m.digest, mediaType: m.mediaType, fetchedAt: 1_700_000_000_123 });
      expect(await store.getTag(hub, 'edge')).toBeUndefined();
    });

    it('keeps tags of the same repository under different upstreams apart', async () => {
      const a = jsonManifest(3);
      const b = jsonManifest(4);
      await store.putTag(hub, '3.20', { digest: a.digest, mediaType: a.mediaType, fetchedAt: 1 });
      await store.putTag(local, '3.20', { digest: b.digest, mediaType: DOCKER_MANIFEST, fetchedAt: 2 });
      expect(await store.getTag(hub, '3.20')).toEqual({ digest: a.digest, mediaType: a.mediaType, fetchedAt: 1 });
      expect(await store.getTag(local, '3.20')).toEqual({ digest: b.digest, mediaType: DOCKER_MANIFEST, fetchedAt: 2 });
    });

    it('keeps the same tag in different repositories apart, nested names included', async () => {
      const repos: RepoKey[] = [
        hub,
        other,
        { upstream: 'docker.io', repository: 'library' },
        { upstream: 'docker.io', repository: 'library/alpine/latest' },
        { upstream: 'docker.io', repository: 'library/alpine.json/x' },
        { upstream: 'docker.io', repository: 'library/alpine/tags' },
        { upstream: 'docker.io', repository: 'library/alpine/latest.json' },
        { upstream: 'docker.io', repository: 'library/alpine/tags/latest' },
      ];
      const records = repos.map((_, i) => ({ digest: jsonManifest(100 + i).digest, mediaType: OCI_MANIFEST, fetchedAt: 100 + i }));
      for (const [i, repo] of repos.entries()) {
        await store.putTag(repo, 'latest', records[i]!);
        await store.putTagList(repo, { tags: [`tag-of-${i}`], fetchedAt: 200 + i });
      }
      await store.putTag(hub, 'json', { digest: records[0]!.digest, mediaType: OCI_MANIFEST, fetchedAt: 7 });
      for (const [i, repo] of repos.entries()) {
        expect(await store.getTag(repo, 'latest')).toEqual(records[i]);
        expect(await store.getTagList(repo)).toEqual({ tags: [`tag-of-${i}`], fetchedAt: 200 + i });
      }
      expect(await store.getTag(other, 'json')).toBeUndefined();
    });

    it('overwrites a tag with a newer record', async () => {
      const old = jsonManifest(5);
      const fresh = jsonManifest(6);
      await store.putTag(hub, 'latest', { digest: old.digest, mediaType: OCI_MANIFEST, fetchedAt: 1000 });
      await store.putTag(hub, 'latest', { digest: old.digest, mediaType: OCI_MANIFEST, fetchedAt: 2000 });
      expect(await store.getTag(hub, 'latest')).toEqual({ digest: old.digest, mediaType: OCI_MANIFEST, fetchedAt: 2000 });
      await store.putTag(hub, 'latest', { digest: fresh.digest, mediaType: OCI_INDEX, fetchedAt: 3000 });
      expect(await store.getTag(hub, 'latest')).toEqual({ digest: fresh.digest, mediaType: OCI_INDEX, fetchedAt: 3000 });
    });

    it('stores, overwrites and isolates tag lists', async () => {
      const tags = Array.from({ length: 2000 }, (_, i) => `v1.${i}.0-rc_${i}`);
      await store.putTagList(hub, { tags, fetchedAt: 10 });
      await store.putTagList(local, { tags: [], fetchedAt: 11 });
      expect(await store.getTagList(hub)).toEqual({ tags, fetchedAt: 10 });
      expect(await store.getTagList(local)).toEqual({ tags: [], fetchedAt: 11 });
      expect(await store.getTagList(other)).toBeUndefined();
      await store.putTagList(hub, { tags: ['3.19', '3.20', 'latest'], fetchedAt: 12 });
      expect(await store.getTagList(hub)).toEqual({ tags: ['3.19', '3.20', 'latest'], fetchedAt: 12 });
    });

    it('accepts concurrent puts of the same manifest and tag', async () => {
      const m = manifest(randomBytes(64 * 1024));
      await Promise.all(Array.from({ length: 20 }, () => store.putManifest(m)));
      expectSameManifest(await store.getManifest(m.digest), m);
      const records = Array.from({ length: 20 }, (_, i) => ({ digest: m.digest, mediaType: OCI_MANIFEST, fetchedAt: i }));
      await Promise.all(records.map((r) => store.putTag(hub, 'latest', r)));
      const got = await store.getTag(hub, 'latest');
      // Last writer wins, and it is one of the records, never a torn mix.
      expect(records).toContainEqual(got);
    });

    it('accepts many concurrent puts of different manifests', async () => {
      const ms = Array.from({ length: 50 }, (_, i) => jsonManifest(1000 + i));
      await Promise.all(ms.map((m) => store.putManifest(m)));
      const got = await Promise.all(ms.map((m) => store.getManifest(m.digest)));
      got.forEach((g, i) => expectSameManifest(g, ms[i]!));
    });

    it('links repositories to digests, each repository apart, and scans and deletes links', async () => {
      const [a, b, c] = ['a', 'b', 'c'].map((x) => `sha256:${createHash('sha256').update(x).digest('hex')}`) as [string, string, string];
      const nested: RepoKey = { upstream: 'localhost:5000', repository: 'team/app/web' };
      expect(await store.hasLink(hub, a)).toBe(false);
      await store.putLinks(hub, [a, b]);
      await store.putLinks(hub, [a]); // idempotent
      await store.putLinks(nested, [c]);
      await store.putLinks(other, []);
      expect(await store.hasLink(hub, a)).toBe(true);
      expect(await store.hasLink(hub, b)).toBe(true);
      // Nothing crosses to another repository, another upstream, or a parent or child path.
      expect(await store.hasLink(other, a)).toBe(false);
      expect(await store.hasLink(local, a)).toBe(false);
      expect(await store.hasLink({ upstream: 'docker.io', repository: 'library' }, a)).toBe(false);
      expect(await store.hasLink({ upstream: 'docker.io', repository: 'library/alpine/x' }, a)).toBe(false);
      expect(await store.hasLink({ upstream: 'localhost:5000', repository: 'team/app' }, c)).toBe(false);
      expect(await store.hasLink(nested, c)).toBe(true);
      // Links sit beside the repository's tags without hiding them from scans, and the other way round.
      await store.putTag(nested, 'v1', { digest: c, mediaType: OCI_MANIFEST, fetchedAt: 5 });
      const links: string[] = [];
      for await (const l of store.scanLinks()) links.push(`${l.repo.upstream}/${l.repo.repository}@${l.digest}`);
      expect(links.sort()).toEqual([`docker.io/library/alpine@${a}`, `docker.io/library/alpine@${b}`, `localhost:5000/team/app/web@${c}`].sort());
      const tags: string[] = [];
      for await (const t of store.scanTags()) tags.push(`${t.repo.upstream}/${t.repo.repository}:${t.tag}`);
      expect(tags).toEqual(['localhost:5000/team/app/web:v1']);

      await store.deleteLinks(hub, [a]);
      expect(await store.hasLink(hub, a)).toBe(false);
      expect(await store.hasLink(hub, b)).toBe(true);
    });

    it('refuses links under keys that could escape their place', async () => {
      const good = `sha256:${'a'.repeat(64)}`;
      await expect(store.putLinks({ upstream: 'docker.io', repository: '../../etc' }, [good])).rejects.toThrow();
      await expect(store.putLinks(hub, ['sha256:../../etc/passwd'])).rejects.toThrow();
      await expect(store.hasLink(hub, '../x')).rejects.toThrow();
      expect(await store.hasLink(hub, good)).toBe(false);
    });

    it('keeps referrers records per repository and subject, replaced whole, and refuses keys that could escape', async () => {
      const subject = jsonManifest(900).digest;
      const otherSubject = jsonManifest(901).digest;
      const sbom = { mediaType: OCI_MANIFEST, digest: jsonManifest(902).digest, size: 120, artifactType: 'application/spdx+json', annotations: { 'org.example': 'a b' } };
      const sig = { mediaType: OCI_MANIFEST, digest: jsonManifest(903).digest, size: 99 };
      expect(await store.getReferrers(hub, subject)).toBeUndefined();
      const first = { upstream: [sbom], fetchedAt: 1_700_000_000_001, api: true, held: [] };
      await store.putReferrers(hub, subject, first);
      expect(await store.getReferrers(hub, subject)).toEqual(first);
      expect(await store.getReferrers(hub, otherSubject)).toBeUndefined();
      expect(await store.getReferrers(other, subject)).toBeUndefined();
      expect(await store.getReferrers(local, subject)).toBeUndefined();
      const second = { upstream: [], fetchedAt: 5, api: false, held: [sig, sbom] };
      await store.putReferrers(hub, subject, second);
      expect(await store.getReferrers(hub, subject)).toEqual(second);
      await expect(store.putReferrers({ upstream: 'docker.io', repository: '../../etc' }, subject, first)).rejects.toThrow();
      await expect(store.putReferrers(hub, 'sha256:../../etc/passwd', first)).rejects.toThrow();
      await expect(store.getReferrers(hub, '../x')).rejects.toThrow();
    });

    it('persists across a reopen', async (ctx) => {
      if (!fixture.reopen) ctx.skip();
      const m = manifest(Buffer.from([0xff, 0x0a, 0x00, 0x41]), DOCKER_MANIFEST);
      await store.putManifest(m);
      await store.putTag(local, 'v1', { digest: m.digest, mediaType: m.mediaType, fetchedAt: 42 });
      await store.putTagList(local, { tags: ['v1'], fetchedAt: 43 });
      await store.putLinks(local, [m.digest]);
      const referrers = { upstream: [], fetchedAt: 44, api: false, held: [{ mediaType: OCI_MANIFEST, digest: m.digest, size: 4 }] };
      await store.putReferrers(local, m.digest, referrers);
      await store.close();
      reopened = await fixture.reopen!();
      expectSameManifest(await reopened.getManifest(m.digest), m);
      expect(await reopened.getTag(local, 'v1')).toEqual({ digest: m.digest, mediaType: m.mediaType, fetchedAt: 42 });
      expect(await reopened.getTagList(local)).toEqual({ tags: ['v1'], fetchedAt: 43 });
      expect(await reopened.hasLink(local, m.digest)).toBe(true);
      expect(await reopened.getReferrers(local, m.digest)).toEqual(referrers);
    });

    // Reads use keys that were never put: a memory decorator may remember a put its inner
    // store refused (it keeps memory on inner write failures), which is fine for keys that the
    // edge never lets through.
    describe('rejects keys that could escape their place', () => {
      const record = { digest: `sha256:${'a'.repeat(64)}`, mediaType: OCI_MANIFEST, fetchedAt: 1 };
      const badRepos: RepoKey[] = [
        { upstream: '..', repository: 'library/alpine' },
        { upstream: '.', repository: 'library/alpine' },
        { upstream: 'docker.io/../x', repository: 'library/alpine' },
        { upstream: '', repository: 'library/alpine' },
        { upstream: 'docker.io', repository: '../../../etc' },
        { upstream: 'docker.io', repository: 'library/../../x' },
        { upstream: 'docker.io', repository: 'library/./alpine' },
        { upstream: 'docker.io', repository: '/etc/passwd' },
        { upstream: 'docker.io', repository: 'library//alpine' },
        { upstream: 'docker.io', repository: 'library/alp\0ine' },
        { upstream: 'docker.io', repository: 'library\\..\\x' },
      ];
      const badTags = ['..', '.', '', '../latest', 'a/b', 'lat\0est', 'a:b'];
      const badDigests = ['sha256:../../etc/passwd', 'sha256:abc', `md5:${'a'.repeat(32)}`, `sha256:${'A'.repeat(64)}`, '../x'];

      it('for repositories and upstreams', async () => {
        for (const repo of badRepos) {
          await expect(store.putTag(repo, 'latest', record), JSON.stringify(repo)).rejects.toThrow();
          await expect(store.getTag(repo, 'edge'), JSON.stringify(repo)).rejects.toThrow();
          await expect(store.putTagList(repo, { tags: ['x'], fetchedAt: 1 }), JSON.stringify(repo)).rejects.toThrow();
          await expect(store.getTagList({ ...repo, repository: repo.repository + '/tl' }), JSON.stringify(repo)).rejects.toThrow();
        }
      });

      it('for tags', async () => {
        for (const tag of badTags) {
          await expect(store.putTag(other, tag, record), JSON.stringify(tag)).rejects.toThrow();
          await expect(store.getTag(hub, tag), JSON.stringify(tag)).rejects.toThrow();
        }
        // Nothing leaked into a neighbour's record.
        expect(await store.getTag(other, 'latest')).toBeUndefined();
        expect(await store.getTagList({ upstream: 'docker.io', repository: 'library' })).toBeUndefined();
      });

      it('for digests', async () => {
        for (const digest of badDigests) {
          await expect(store.putManifest({ digest, mediaType: OCI_MANIFEST, body: Buffer.from('{}') }), digest).rejects.toThrow();
          await expect(store.getManifest(`${digest}0`), digest).rejects.toThrow();
        }
      });
    });
  });
}
