import { describe, expect, it } from 'vitest';
import { nextPagePath, pageTags, sortTags } from '../../src/proxy/tag-list-service.ts';

describe('tag paging', () => {
  const sorted = sortTags(['v2', 'latest', 'B', 'a', 'v10']);
  it('sorts by code point', () => expect(sorted).toEqual(['B', 'a', 'latest', 'v10', 'v2']));
  it('returns everything without n or last', () => expect(pageTags(sorted, undefined, undefined)).toEqual({ tags: sorted, nextLast: undefined }));
  it('n limits and points to the next page', () => expect(pageTags(sorted, 2, undefined)).toEqual({ tags: ['B', 'a'], nextLast: 'a' }));
  it('last starts strictly after', () => expect(pageTags(sorted, undefined, 'a').tags).toEqual(['latest', 'v10', 'v2']));
  it('last that is not a tag starts after its position', () => expect(pageTags(sorted, undefined, 'b').tags).toEqual(['latest', 'v10', 'v2']));
  it('last page has no next', () => expect(pageTags(sorted, 3, 'a')).toEqual({ tags: ['latest', 'v10', 'v2'], nextLast: undefined }));
  it('n=0 is an empty list without a Link', () => expect(pageTags(sorted, 0, undefined)).toEqual({ tags: [], nextLast: undefined }));
  it('reads the next page from a Link header', () => {
    expect(nextPagePath('</v2/a/tags/list?last=x&n=100>; rel="next"')).toBe('/v2/a/tags/list?last=x&n=100');
    expect(nextPagePath('<https://r.example/v2/a/tags/list?last=x>; rel="next"')).toBe('/v2/a/tags/list?last=x');
    expect(nextPagePath(undefined)).toBeUndefined();
    expect(nextPagePath('</v2/a/tags/list?last=x>; rel="prev"')).toBeUndefined();
  });
});
