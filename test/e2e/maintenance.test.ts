// Cache maintenance: the admin API of a running wharf (off without a token, bearer-token
// protected), and `wharf gc` / `wharf stats` on the cache with no server running.
import { utimes, writeFile, readdir, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { runWharfCli } from '../support/wharf-process.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { Skopeo } from '../support/skopeo.ts';

const TOKEN = 'test-admin-token-0123456789';
const images = [0, 1, 2].map((i) => makeImage({ name: `maint-${i}`, files: { 'm.txt': `${i}\n` }, extraLayerBytes: (i + 1) * (300 << 10) }));
const bytesOf = (i: number) => [images[i]!.config, ...images[i]!.layers].reduce((s, b) => s + b.body.length, 0);

describe('cache maintenance', () => {
  let upstream: UpstreamRegistry;
  let dir: TempDir;
  let dataDir: string;
  let wharf: TestWharf;
  let skopeo: Skopeo;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    for (const [i, image] of images.entries()) await pushImage(upstream.url, `team/app${i}`, 'v1', image);
    dir = await makeTempDir('wharf-maint-');
    dataDir = join(dir.path, 'data');
    skopeo = await Skopeo.create();
    wharf = await startWharf({ dataDir, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }], adminToken: TOKEN });
    for (let i = 0; i < 3; i++) await skopeo.copy(`docker://${wharf.host}/team/app${i}:v1`);
    await wharf.deps.blobs.settled();
    // A crash leftover (old) and a temp file of a fill that could be running (new).
    const tmp = join(dataDir, 'blobs', 'tmp');
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, 'sha256-old-leftover'), 'x');
    const hourAgo = new Date(Date.now() - 3600_000);
    await utimes(join(tmp, 'sha256-old-leftover'), hourAgo, hourAgo);
    await writeFile(join(tmp, 'sha256-running-fill'), 'y');
    const store = wharf.deps.manifestStore;
    const oci = 'application/vnd.oci.image.manifest.v1+json';
    // A tag whose manifest is gone; a tag not confirmed for years; a manifest nothing needs.
    await store.putTag({ upstream: 'docker.io', repository: 'team/ghost' }, 'v0', { digest: `sha256:${'0'.repeat(64)}`, mediaType: oci, fetchedAt: 1 });
    await store.putTag({ upstream: 'docker.io', repository: 'team/app0' }, 'ancient', { digest: images[0]!.manifest.digest, mediaType: oci, fetchedAt: 1 });
    const stray = makeImage({ name: 'maint-stray', files: { 's.txt': 'never pulled\n' } });
    await store.putManifest({ digest: stray.manifest.digest, mediaType: oci, body: stray.manifest.body });
    // Links to content that is not (or will not be) there.
    await store.putLinks({ upstream: 'docker.io', repository: 'team/ghost' }, [`sha256:${'0'.repeat(64)}`]);
    await store.putLinks({ upstream: 'docker.io', repository: 'team/stray' }, [stray.manifest.digest]);
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await skopeo?.cleanup();
    await dir?.cleanup();
  });

  const admin = (path: string, init: RequestInit = {}, token = TOKEN) => fetch(`${wharf.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}` } });

  it('refuses the admin API without the right token', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: TOKEN }]) {
      const res = await fetch(`${wharf.url}/admin/stats`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="wharf-admin"');
    }
  });

  it('reports cache statistics', async () => {
    const stats = (await (await admin('/admin/stats')).json()) as Record<string, any>;
    expect(stats).toMatchObject({ blobs: 9, manifests: 4, tags: 5, upstreams: { 'docker.io': { repositories: 4, tags: 5 } } });
    expect(stats.bytes).toBe(bytesOf(0) + bytesOf(1) + bytesOf(2));
    expect(stats.topRepositories[0]).toEqual({ repository: 'docker.io/team/app2', bytes: bytesOf(2), tags: 1 });
    expect(stats.mostPulled.map((r: { repository: string }) => r.repository).sort()).toEqual(['docker.io/team/app0', 'docker.io/team/app1', 'docker.io/team/app2']);
  });

  it('collects garbage: a dry run changes nothing, then leftovers and orphaned tags go', async () => {
    const dry = (await (await admin('/admin/gc?dryRun=true', { method: 'POST' })).json()) as Record<string, any>;
    expect(dry).toMatchObject({ dryRun: true, tempFiles: 1, orphanedTags: ['docker.io/team/ghost:v0'], expiredTags: 1, orphanedManifests: 1, evicted: { blobs: 0, reason: 'none' } });
    expect(dry.orphanedLinks).toBe(2);
    expect((await readdir(join(dataDir, 'blobs', 'tmp'))).sort()).toEqual(['sha256-old-leftover', 'sha256-running-fill']);
    const real = (await (await admin('/admin/gc', { method: 'POST' })).json()) as Record<string, any>;
    expect(real).toMatchObject({ dryRun: false, tempFiles: 1, orphanedTags: ['docker.io/team/ghost:v0'], expiredTags: 1, orphanedManifests: 1, orphanedLinks: 2 });
    const links: string[] = [];
    for await (const l of wharf.deps.manifestStore.scanLinks()) links.push(`${l.repo.repository}@${l.digest}`);
    expect(links).not.toContain(`team/ghost@sha256:${'0'.repeat(64)}`);
    expect(links.filter((l) => l.startsWith('team/stray@'))).toEqual([]);
    // The links of what stays, stay.
    for (const blob of [images[0]!.config, ...images[0]!.layers]) expect(links).toContain(`team/app0@${blob.digest}`);
    // Still served: the tagged images and their manifests stay.
    expect((await fetch(`${wharf.url}/v2/team/app0/manifests/v1`)).status).toBe(200);
    expect(await wharf.deps.manifestStore.getTag({ upstream: 'docker.io', repository: 'team/app0' }, 'ancient')).toBeUndefined();
    expect(await readdir(join(dataDir, 'blobs', 'tmp'))).toEqual(['sha256-running-fill']);
    expect(await wharf.deps.manifestStore.getTag({ upstream: 'docker.io', repository: 'team/ghost' }, 'v0')).toBeUndefined();
  });

  it('does the same from the command line, and enforces a budget there', async () => {
    await wharf.close(2000);
    const config = join(dir.path, 'wharf.yaml');
    const budget = bytesOf(2) + 1000; // room for the largest image only
    await writeFile(config, stringify({ dataDir, cache: { maxBytes: budget, minFreeBytes: 0, evictionGraceSeconds: 0 }, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] }));
    const stats = await runWharfCli(['stats', '-c', config]);
    expect(stats.code, stats.stderr).toBe(0);
    expect(stats.stdout).toContain('cache: 9 blobs');
    expect(stats.stdout).toMatch(/docker\.io: 3 repositories, 3 tags/);
    const dry = await runWharfCli(['gc', '--dry-run', '-c', config]);
    expect(dry.stdout).toMatch(/would evict \d+ blobs .* for the size budget/);
    const gc = await runWharfCli(['gc', '-c', config]);
    expect(gc.code).toBe(0);
    expect(gc.stdout).toMatch(/evicted \d+ blobs/);
    const after = JSON.parse((await runWharfCli(['stats', '--json', '-c', config])).stdout) as { bytes: number };
    expect(after.bytes).toBeLessThanOrEqual(budget * 0.9);
  });
});

describe('admin API switched off', () => {
  it('does not exist without a token', async () => {
    const wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: 'http://127.0.0.1:9', default: true }] });
    try {
      expect((await fetch(`${wharf.url}/admin/stats`)).status).toBe(404);
      expect((await fetch(`${wharf.url}/admin/gc`, { method: 'POST' })).status).toBe(404);
    } finally {
      await wharf.stop();
    }
  });
});
