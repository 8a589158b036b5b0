// No content across repositories: what was cached through one repository is served under
// another only when that one is known to reference it (its manifests name it, or its upstream
// confirms it with a HEAD for it). The real reference registry is the upstream; it answers 404
// for repositories it does not have, as private registries do for the ones you may not see.
import { readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, makeIndex } from '../support/test-images.ts';
import { pushImage, pushIndex } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startBlobUpstream, type BlobUpstream } from '../support/blob-upstream.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { TAG_LINKS_MARKER } from '../../src/cache/link-tagged-once.ts';

const image = makeImage({ name: 'isolated', files: { 'secret.txt': 'only for small\n' }, extraLayerBytes: 64 << 10 });
const shared = makeImage({ name: 'shared', files: { 'shared.txt': 'in two repositories\n' } });
const arm = makeImage({ name: 'isolated-arm', files: { 'a.txt': 'arm\n' }, arch: 'arm64' });
const amd = makeImage({ name: 'isolated-amd', files: { 'a.txt': 'amd\n' } });
const index = makeIndex([amd, arm], 'oci');
const layer = image.layers[0]!;

async function upstreamAsked(up: UpstreamRegistry, since: number) {
  await up.settleLog();
  return up.requestLog().slice(since).map((e) => `${e.method} ${e.path}`);
}

describe.each([1, 2])('repository isolation (threads: %i)', (threads) => {
  let upstream: UpstreamRegistry;
  let dataDir: TempDir;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/small', 'latest', image);
    await pushImage(upstream.url, 'library/small', 'shared', shared);
    await pushImage(upstream.url, 'other/app', 'v1', shared);
    await pushIndex(upstream.url, 'library/multi', 'latest', index, [amd, arm]);
    dataDir = await makeTempDir('wharf-isolation-');
    wharf = await startWharf({ dataDir: dataDir.path, threads, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
    // Cached through `small`: its manifest names the config and the layer.
    const m = await fetch(`${wharf.url}/v2/small/manifests/latest`, { headers: { accept: image.manifest.mediaType } });
    expect(m.status).toBe(200);
    await m.arrayBuffer();
    for (const blob of [image.config, layer, shared.config]) {
      const res = await fetch(`${wharf.url}/v2/small/blobs/${blob.digest}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await dataDir?.cleanup();
  });

  it.each([
    ['GET', 'blobs', layer.digest, 'BLOB_UNKNOWN'],
    ['HEAD', 'blobs', layer.digest, 'BLOB_UNKNOWN'],
    ['GET', 'manifests', image.manifest.digest, 'MANIFEST_UNKNOWN'],
    ['HEAD', 'manifests', image.manifest.digest, 'MANIFEST_UNKNOWN'],
  ])('serves nothing of small under a repository the upstream does not have (%s %s)', async (method, kind, digest, code) => {
    for (const repo of ['totally/other/repo', 'smal', 'small/x']) {
      const res = await fetch(`${wharf.url}/v2/${repo}/${kind}/${digest}`, { method });
      expect(res.status, repo).toBe(404);
      expect(res.headers.get('x-wharf-cache'), repo).not.toBe('hit');
      const body = await res.text();
      if (method === 'GET') expect(JSON.parse(body).errors[0].code, repo).toBe(code);
      expect(body).not.toContain('only for small');
    }
  });

  it('serves a layer shared with another repository from the cache once its upstream confirms it, and remembers that', async () => {
    const before = upstream.requestLog().length;
    const first = await fetch(`${wharf.url}/v2/other/app/blobs/${shared.config.digest}`);
    expect(first.status).toBe(200);
    expect(Buffer.from(await first.arrayBuffer()).equals(shared.config.body)).toBe(true);
    expect(first.headers.get('x-wharf-cache')).toBe('hit');
    // One HEAD for other/app, no download.
    expect(await upstreamAsked(upstream, before)).toEqual([`HEAD /v2/other/app/blobs/${shared.config.digest}`]);

    const mark = upstream.requestLog().length;
    const again = await fetch(`${wharf.url}/v2/other/app/blobs/${shared.config.digest}`, { method: 'HEAD' });
    expect(again.status).toBe(200);
    expect(await upstreamAsked(upstream, mark)).toEqual([]);
  });

  it('links an index to its platform manifests, so each is served by digest under that repository only', async () => {
    const top = await fetch(`${wharf.url}/v2/multi/manifests/latest`, { headers: { accept: index.mediaType } });
    expect(top.status).toBe(200);
    await top.arrayBuffer();
    const child = await fetch(`${wharf.url}/v2/multi/manifests/${arm.manifest.digest}`, { headers: { accept: arm.manifest.mediaType } });
    expect(child.status).toBe(200);
    expect(Buffer.from(await child.arrayBuffer()).equals(arm.manifest.body)).toBe(true);
    const elsewhere = await fetch(`${wharf.url}/v2/small/manifests/${arm.manifest.digest}`);
    expect(elsewhere.status).toBe(404);
    await elsewhere.arrayBuffer();
  });
});

describe('repository links survive a restart and hold offline', () => {
  let upstream: UpstreamRegistry;
  let dataDir: TempDir;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/small', 'latest', image);
    dataDir = await makeTempDir('wharf-isolation-restart-');
  });

  afterAll(async () => {
    await upstream?.stop();
    await dataDir?.cleanup();
  });

  it('serves small offline after a restart, and still nothing of it under another name', async () => {
    const online = await startWharf({ dataDir: dataDir.path, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
    try {
      await (await fetch(`${online.url}/v2/small/manifests/latest`, { headers: { accept: image.manifest.mediaType } })).arrayBuffer();
      const blob = await fetch(`${online.url}/v2/small/blobs/${layer.digest}`);
      expect(blob.status).toBe(200);
      await blob.arrayBuffer();
    } finally {
      await online.stop();
    }
    const offline = await startWharf({ dataDir: dataDir.path, offline: true, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
    try {
      const byDigest = await fetch(`${offline.url}/v2/small/manifests/${image.manifest.digest}`, { headers: { accept: image.manifest.mediaType } });
      expect(byDigest.status).toBe(200);
      await byDigest.arrayBuffer();
      const blob = await fetch(`${offline.url}/v2/small/blobs/${layer.digest}`);
      expect(blob.status).toBe(200);
      expect(Buffer.from(await blob.arrayBuffer()).equals(layer.body)).toBe(true);
      for (const path of [`/v2/elsewhere/blobs/${layer.digest}`, `/v2/elsewhere/manifests/${image.manifest.digest}`]) {
        const res = await fetch(`${offline.url}${path}`);
        expect(res.status, path).toBe(404);
        await res.arrayBuffer();
      }
    } finally {
      await offline.stop();
    }
  });
});

describe('a cache written before repository links existed', () => {
  let upstream: UpstreamRegistry;
  let dataDir: TempDir;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/small', 'latest', image);
    dataDir = await makeTempDir('wharf-isolation-upgrade-');
  });

  afterAll(async () => {
    await upstream?.stop();
    await dataDir?.cleanup();
  });

  it('gets links for its tagged images at start, so an offline pull of them still works', async () => {
    const online = await startWharf({ dataDir: dataDir.path, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
    try {
      await (await fetch(`${online.url}/v2/small/manifests/latest`, { headers: { accept: image.manifest.mediaType } })).arrayBuffer();
      await (await fetch(`${online.url}/v2/small/blobs/${layer.digest}`)).arrayBuffer();
    } finally {
      await online.stop();
    }
    // What an older wharf left: the same records, no links.
    const linkDirs = (await readdir(dataDir.path, { recursive: true })).filter((p) => basename(p) === '_links');
    expect(linkDirs.length).toBeGreaterThan(0);
    for (const dir of linkDirs) await rm(join(dataDir.path, dir), { recursive: true });
    // Nor had it the marker of a completed link scan, which the start above wrote.
    await rm(join(dataDir.path, TAG_LINKS_MARKER));

    const offline = await startWharf({ dataDir: dataDir.path, offline: true, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
    try {
      let status = 0;
      for (const deadline = Date.now() + 5000; status !== 200 && Date.now() < deadline; ) {
        const res = await fetch(`${offline.url}/v2/small/blobs/${layer.digest}`);
        status = res.status;
        await res.arrayBuffer();
        if (status !== 200) await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe(200);
      const elsewhere = await fetch(`${offline.url}/v2/elsewhere/blobs/${layer.digest}`);
      expect(elsewhere.status).toBe(404);
      await elsewhere.arrayBuffer();
    } finally {
      await offline.stop();
    }
  });
});

describe('a fill running for one repository', () => {
  let blobs: BlobUpstream;
  let wharf: TestWharf;

  beforeAll(async () => {
    blobs = await startBlobUpstream();
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: blobs.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await blobs?.stop();
  });

  it('is not joined by a request under a repository its upstream does not confirm; one it confirms joins without a second download', async () => {
    const body = Buffer.alloc(256 << 10, 7);
    const digest = blobs.serve(body, { kind: 'stall', afterBytes: 64 << 10, pauseMs: 1500 }, ['team/a', 'team/b']);
    const filling = fetch(`${wharf.url}/v2/team/a/blobs/${digest}`);
    const first = await filling;
    expect(first.status).toBe(200);
    // The fill is stalled part-way: team/x asks for the same digest meanwhile.
    const stranger = await fetch(`${wharf.url}/v2/team/x/blobs/${digest}`);
    expect(stranger.status).toBe(404);
    expect(JSON.parse(await stranger.text()).errors[0].code).toBe('BLOB_UNKNOWN');
    const sibling = await fetch(`${wharf.url}/v2/team/b/blobs/${digest}`);
    expect(sibling.status).toBe(200);
    expect(Buffer.from(await sibling.arrayBuffer()).equals(body)).toBe(true);
    expect(Buffer.from(await first.arrayBuffer()).equals(body)).toBe(true);
    expect(blobs.gets(digest)).toBe(1);
    expect(blobs.heads(digest, 'team/x')).toBe(1);
    expect(blobs.heads(digest, 'team/b')).toBe(1);
  });
});
