// Offline mode: the cache is the registry of record. Cached images pull by tag (however old)
// and by digest; anything else is a clear 404; the upstream is never contacted at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startTcpFaults, type TcpFaults } from '../support/tcp-faults.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { Skopeo } from '../support/skopeo.ts';

const image = makeImage({ name: 'offline', files: { 'o.txt': 'offline\n' }, extraLayerBytes: 256 << 10 });
const other = makeImage({ name: 'offline-other', files: { 'x.txt': 'never cached\n' } });
type OciErrors = { errors: Array<{ code: string }> };

describe('offline mode', () => {
  let upstream: UpstreamRegistry;
  let link: TcpFaults;
  let data: TempDir;
  let skopeo: Skopeo;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/app', 'latest', image);
    await pushImage(upstream.url, 'library/app', 'other', other);
    link = await startTcpFaults({ host: '127.0.0.1', port: upstream.port });
    data = await makeTempDir('wharf-offline-');
    skopeo = await Skopeo.create();
    const upstreams = [{ name: 'docker.io', url: link.url, default: true }];
    const online = await startWharf({ dataDir: data.path, upstreams });
    await skopeo.copy(`docker://${online.host}/library/app:latest`);
    await online.close(2000);
    // Tags expire at once (TTL 0): only offline mode can serve them without asking.
    wharf = await startWharf({ dataDir: data.path, upstreams, offline: true, tagTtlSeconds: 0 });
  });

  afterAll(async () => {
    await wharf?.close(2000);
    await link?.stop();
    await upstream?.stop();
    await skopeo?.cleanup();
    await data?.cleanup();
  });

  it('pulls cached images by tag and digest without ever contacting the upstream', async () => {
    const before = link.connections();
    const byTag = await skopeo.copy(`docker://${wharf.host}/library/app:latest`);
    expect(byTag.index.manifests[0]?.digest).toBe(image.manifest.digest);
    const byDigest = await skopeo.copy(`docker://${wharf.host}/library/app@${image.manifest.digest}`);
    expect(byDigest.index.manifests[0]?.digest).toBe(image.manifest.digest);
    const tag = await fetch(`${wharf.url}/v2/library/app/manifests/latest`);
    expect(tag.headers.get('x-wharf-cache')).toBe('hit');
    expect(link.connections()).toBe(before);
  });

  it('answers 404 with the right code for anything not cached, still without contacting the upstream', async () => {
    const before = link.connections();
    const cases: Array<[string, number, string]> = [
      ['/v2/library/app/manifests/other', 404, 'MANIFEST_UNKNOWN'],
      [`/v2/library/app/manifests/${other.manifest.digest}`, 404, 'MANIFEST_UNKNOWN'],
      [`/v2/library/app/blobs/${other.layers[0]!.digest}`, 404, 'BLOB_UNKNOWN'],
      ['/v2/library/app/tags/list', 404, 'NAME_UNKNOWN'],
    ];
    for (const [path, status, code] of cases) {
      const res = await fetch(`${wharf.url}${path}`);
      expect(res.status, path).toBe(status);
      expect(((await res.json()) as OciErrors).errors[0]?.code, path).toBe(code);
    }
    const head = await fetch(`${wharf.url}/v2/library/app/blobs/${other.layers[0]!.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(404);
    // Referrers: what wharf holds with that subject (nothing here), the same answer as online.
    const referrers = await fetch(`${wharf.url}/v2/library/app/referrers/${image.manifest.digest}`);
    expect(referrers.status).toBe(200);
    expect(((await referrers.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    expect(link.connections()).toBe(before);
  });
});
