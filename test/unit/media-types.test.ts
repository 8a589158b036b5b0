import { describe, expect, it } from 'vitest';
import { baseMediaType, isValidMediaType, MediaType, UPSTREAM_MANIFEST_ACCEPT } from '../../src/oci/media-types.ts';

describe('media types', () => {
  it('strips parameters and case from a Content-Type', () => {
    expect(baseMediaType('Application/JSON; charset=utf-8')).toBe('application/json');
    expect(baseMediaType(undefined)).toBe('');
  });

  it('checks the RFC 6838 grammar: nothing that could break a header line', () => {
    expect(isValidMediaType(MediaType.ociManifest)).toBe(true);
    expect(isValidMediaType('application/vnd.example.sbom+json')).toBe(true);
    for (const bad of ['text/html\r\nSet-Cookie: a=b', 'application/x\u0100', 'application/', '/json', 'a/b c', 'a/b;x=y', '', 'a/' + 'b'.repeat(128)]) {
      expect(isValidMediaType(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it('asks upstreams for indexes first and never for schema1', () => {
    expect(UPSTREAM_MANIFEST_ACCEPT.split(', ')[0]).toBe(MediaType.ociIndex);
    expect(UPSTREAM_MANIFEST_ACCEPT).toContain(MediaType.dockerManifestList);
    expect(UPSTREAM_MANIFEST_ACCEPT).not.toContain('distribution.manifest.v1');
  });
});
