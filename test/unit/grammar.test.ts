import { describe, expect, it } from 'vitest';
import { isValidRepositoryName, isValidTag, assertRepositoryName } from '../../src/oci/grammar.ts';
import { looksLikeDigest, parseDigest, digestOf } from '../../src/oci/digest.ts';
import { DigestInvalidError, NameInvalidError } from '../../src/errors.ts';

describe('repository names', () => {
  it.each(['alpine', 'library/alpine', 'a/b/c', 'my-org/my_img', 'a__b', 'a.b-c', 'ghcr.io/owner/img', 'x--y'])('accepts %s', (n) =>
    expect(isValidRepositoryName(n)).toBe(true),
  );
  it.each(['', 'Alpine', '/alpine', 'alpine/', 'a//b', 'a_', '-a', 'a___b', 'a..b', '../etc', 'a/./b', 'host:5000/img', 'a b'])('rejects %j', (n) =>
    expect(isValidRepositoryName(n)).toBe(false),
  );
  it('rejects names over 255 characters with NAME_INVALID', () => {
    expect(() => assertRepositoryName('a'.repeat(256))).toThrow(NameInvalidError);
    expect(() => assertRepositoryName('a'.repeat(255))).not.toThrow();
  });
});

describe('tags', () => {
  it.each(['latest', 'v1.2.3', '1', '_x', 'A_b-c.d', 'a'.repeat(128), 'sha256-abc'])('accepts %s', (t) => expect(isValidTag(t)).toBe(true));
  it.each(['', '.hidden', '-x', 'a'.repeat(129), 'a/b', 'a:b', '..'])('rejects %j', (t) => expect(isValidTag(t)).toBe(false));
});

describe('digests', () => {
  const hex = 'a'.repeat(64);
  it('parses sha256 and sha512', () => {
    expect(parseDigest(`sha256:${hex}`)).toEqual({ algorithm: 'sha256', hex, value: `sha256:${hex}` });
    expect(parseDigest(`sha512:${'b'.repeat(128)}`).algorithm).toBe('sha512');
  });
  it.each([`sha256:${'A'.repeat(64)}`, 'sha256:abc', 'sha256:totallywrong', `md5:${hex}`, `sha256:${hex}0`, 'nocolon', `sha256-${hex}`])(
    'rejects %s with DIGEST_INVALID',
    (d) => expect(() => parseDigest(d)).toThrow(DigestInvalidError),
  );
  it('tells a referrers fallback tag from a digest', () => {
    expect(looksLikeDigest(`sha256-${hex}`)).toBe(false);
    expect(looksLikeDigest(`sha256:${hex}`)).toBe(true);
  });
  it('computes digests', () => {
    expect(digestOf(Buffer.from('hello world'))).toBe('sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
  });
});
