import { describe, expect, it } from 'vitest';
import { baseMediaType, isDigestVerifiable, MediaType, resolveManifestMediaType, UPSTREAM_MANIFEST_ACCEPT } from '../../src/oci/media-types.ts';

describe('media types', () => {
  it('strips parameters and case', () => expect(baseMediaType('Application/JSON; charset=utf-8')).toBe('application/json'));
  it('prefers a manifest Content-Type', () => {
    expect(resolveManifestMediaType(MediaType.ociIndex, Buffer.from('{}'))).toBe(MediaType.ociIndex);
  });
  it('falls back to the body mediaType when the header is generic', () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifest }));
    expect(resolveManifestMediaType('application/json', body)).toBe(MediaType.dockerManifest);
  });
  it('recognises schema1 bodies', () => {
    expect(resolveManifestMediaType('application/json', Buffer.from('{"schemaVersion":1}'))).toBe(MediaType.dockerSchema1Signed);
  });
  it('keeps the header when the body is not JSON', () => {
    expect(resolveManifestMediaType('text/plain', Buffer.from('nope'))).toBe('text/plain');
  });
  it('does not verify schema1 digests over the body', () => {
    expect(isDigestVerifiable(MediaType.dockerSchema1Signed)).toBe(false);
    expect(isDigestVerifiable(MediaType.ociManifest)).toBe(true);
  });
  it('asks upstreams for indexes first so tags resolve to the multi-arch digest', () => {
    expect(UPSTREAM_MANIFEST_ACCEPT.split(', ')[0]).toBe(MediaType.ociIndex);
    expect(UPSTREAM_MANIFEST_ACCEPT).toContain(MediaType.dockerManifestList);
  });
});
