// What a client whose Accept leaves out the stored manifest's type gets, as Docker Hub and the
// reference registry answer (README: What clients see): the OCI index refused with 404 to a
// Docker-only client, a Docker list's linux/amd64 manifest to a client that takes no lists,
// the stored manifest to one that names no manifest type. Cold, cached (fast path) and through
// the hit threads alike.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, makeIndex } from '../support/test-images.ts';
import { pushIndex } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { MediaType } from '../../src/oci/media-types.ts';

const amd64 = makeImage({ name: 'negotiate', files: { a: 'amd64\n' }, arch: 'amd64', mediaType: 'docker' });
const arm64 = makeImage({ name: 'negotiate', files: { a: 'arm64\n' }, arch: 'arm64', mediaType: 'docker' });
const dockerList = makeIndex([arm64, amd64], 'docker');
const ociAmd64 = makeImage({ name: 'negotiate-oci', files: { a: 'oci\n' }, arch: 'amd64' });
const ociIndex = makeIndex([ociAmd64], 'oci');

describe.each([1, 2])('content negotiation (threads: %i)', (threads) => {
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushIndex(upstream.url, 'library/multi', 'latest', dockerList, [arm64, amd64]);
    await pushIndex(upstream.url, 'library/oci', 'latest', ociIndex, [ociAmd64]);
    wharf = await startWharf({ threads, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  const get = async (path: string, accept: string | undefined) => {
    const res = await fetch(`${wharf.url}/v2/${path}`, accept === undefined ? {} : { headers: { accept } });
    return { status: res.status, type: res.headers.get('content-type'), digest: res.headers.get('docker-content-digest'), body: await res.text() };
  };

  it('answers each Accept as the upstreams do, the first time and from the cache', async () => {
    for (const round of ['cold', 'cached']) {
      const refused = await get('library/oci/manifests/latest', `${MediaType.dockerManifest}, ${MediaType.dockerManifestList}`);
      expect(refused.status, round).toBe(404);
      expect(JSON.parse(refused.body)).toMatchObject({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'OCI index found, but accept header does not support OCI indexes' }] });
      expect(await get('library/oci/manifests/latest', MediaType.ociIndex), round).toMatchObject({ status: 200, digest: ociIndex.digest });
      expect(await get('library/oci/manifests/latest', undefined), round).toMatchObject({ status: 200, digest: ociIndex.digest });
      expect(await get('library/oci/manifests/latest', '*/*'), round).toMatchObject({ status: 200, digest: ociIndex.digest });
      // The oldest Docker clients take image manifests but no lists: the list's linux/amd64 one.
      expect(await get('library/multi/manifests/latest', MediaType.dockerManifest), round).toMatchObject({ status: 200, type: MediaType.dockerManifest, digest: amd64.manifest.digest });
      expect(await get(`library/multi/manifests/${dockerList.digest}`, MediaType.dockerManifest), round).toMatchObject({ status: 200, digest: dockerList.digest });
      expect(await get('library/multi/manifests/latest', `${MediaType.dockerManifest}, ${MediaType.dockerManifestList}`), round).toMatchObject({ status: 200, digest: dockerList.digest });
    }
  });
});
