// checkManifest decides what may be cached as a manifest: the four image manifest and index
// types, with the JSON shape of their type, and nothing else.
import { describe, expect, it } from 'vitest';
import { checkManifest } from '../../src/oci/manifest-check.ts';
import { MediaType } from '../../src/oci/media-types.ts';

const D = `sha256:${'a'.repeat(64)}`;
const descriptor = (mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip') => ({ mediaType, digest: D, size: 10 });
const image = (extra: Record<string, unknown> = {}) => ({
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  config: descriptor('application/vnd.oci.image.config.v1+json'),
  layers: [descriptor()],
  ...extra,
});
const body = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('checkManifest', () => {
  it('accepts the four manifest types and takes the type from the body or the header', () => {
    expect(checkManifest(MediaType.ociManifest, body(image()))).toEqual({ ok: true, mediaType: MediaType.ociManifest });
    expect(checkManifest('application/json', body(image({ mediaType: MediaType.dockerManifest })))).toEqual({ ok: true, mediaType: MediaType.dockerManifest });
    const list = { schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests: [{ ...descriptor(MediaType.dockerManifest), platform: { os: 'linux', architecture: 'amd64' } }] };
    expect(checkManifest(undefined, body(list))).toEqual({ ok: true, mediaType: MediaType.dockerManifestList });
    // OCI lets mediaType be left out: the header or the shape says which it is.
    const { mediaType: _, ...bare } = image();
    expect(checkManifest(MediaType.ociManifest, body(bare))).toEqual({ ok: true, mediaType: MediaType.ociManifest });
    expect(checkManifest('application/json', body(bare))).toEqual({ ok: true, mediaType: MediaType.ociManifest });
    expect(checkManifest('', body({ schemaVersion: 2, manifests: [] }))).toEqual({ ok: true, mediaType: MediaType.ociIndex });
    // Artifacts are OCI image manifests with an artifactType.
    expect(checkManifest(MediaType.ociManifest, body(image({ artifactType: 'application/vnd.example.sbom', layers: [] })))).toMatchObject({ ok: true });
  });

  it.each([
    ['a captive portal page', 'text/html', Buffer.from('<html><script>alert(1)</script></html>')],
    ['HTML posing as JSON', 'application/json', Buffer.from('<html></html>')],
    ['a JSON array', 'application/json', body([])],
    ['JSON null', MediaType.ociManifest, body(null)],
    ['a body naming text/html', 'application/json', body(image({ mediaType: 'text/html' }))],
    ['a mediaType with CR/LF', 'application/json', body(image({ mediaType: 'application/vnd.oci.image.manifest.v1+json\r\nX-Evil: 1' }))],
    ['a mediaType above U+00FF', 'application/json', body(image({ mediaType: 'application/vnd.oci.image.manifest.v1+json\u0100' }))],
    ['a body type contradicting the header', MediaType.dockerManifest, body(image())],
    ['schema1 by header', 'application/vnd.docker.distribution.manifest.v1+prettyjws', body({ schemaVersion: 1, name: 'a', tag: 'b' })],
    ['schema1 by body', 'application/json', body({ schemaVersion: 1, name: 'a', tag: 'b', fsLayers: [] })],
    ['schemaVersion 3', MediaType.ociManifest, body(image({ schemaVersion: 3 }))],
    ['a manifest without layers', MediaType.ociManifest, body(image({ layers: undefined }))],
    ['an index without manifests', MediaType.ociIndex, body({ schemaVersion: 2, mediaType: MediaType.ociIndex })],
    ['a layer with a bad digest', MediaType.ociManifest, body(image({ layers: [{ ...descriptor(), digest: 'sha256:../../etc' }] }))],
    ['a layer with a negative size', MediaType.ociManifest, body(image({ layers: [{ ...descriptor(), size: -1 }] }))],
    ['a layer with a header-breaking mediaType', MediaType.ociManifest, body(image({ layers: [descriptor('a/b\r\nc: d')] }))],
    ['a config that is a string', MediaType.ociManifest, body(image({ config: 'x' }))],
    ['non-string annotations', MediaType.ociManifest, body(image({ annotations: { a: 1 } }))],
    ['an unknown Content-Type', 'application/x-something', body(image())],
  ])('refuses %s', (_name, contentType, bytes) => {
    const result = checkManifest(contentType, bytes);
    expect(result.ok).toBe(false);
  });
});
