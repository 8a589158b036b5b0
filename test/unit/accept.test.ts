// Content negotiation for manifests, as the reference registry and Docker Hub do it.
import { describe, expect, it } from 'vitest';
import { negotiateManifest } from '../../src/oci/accept.ts';
import { MediaType } from '../../src/oci/media-types.ts';

const { ociIndex, ociManifest, dockerManifest, dockerManifestList } = MediaType;

describe('negotiateManifest', () => {
  it('sends the stored manifest to a client that lists its type, or lists no manifest type at all', () => {
    for (const accept of [undefined, ociIndex, `${dockerManifest}, ${ociIndex};q=0.5`, '*/*', 'application/json', '']) expect(negotiateManifest(accept, ociIndex), String(accept)).toBe('stored');
    expect(negotiateManifest(`${dockerManifest},${ociManifest}`, ociManifest)).toBe('stored');
    expect(negotiateManifest(`Application/VND.OCI.image.index.v1+JSON`, ociIndex)).toBe('stored');
  });

  it('refuses an OCI type to a client that lists only Docker types, or that says q=0', () => {
    expect(negotiateManifest(`${dockerManifest}, ${dockerManifestList}`, ociIndex)).toBe('refused');
    expect(negotiateManifest(dockerManifest, ociManifest)).toBe('refused');
    expect(negotiateManifest(`${dockerManifest}, ${ociManifest};q=0`, ociManifest)).toBe('refused');
  });

  it("answers a Docker list's linux/amd64 manifest to a client that takes no lists, by tag only", () => {
    expect(negotiateManifest(dockerManifest, dockerManifestList)).toBe('amd64-child');
    expect(negotiateManifest(dockerManifest, dockerManifestList, true)).toBe('stored');
    expect(negotiateManifest(ociManifest, dockerManifestList)).toBe('refused');
  });
});
