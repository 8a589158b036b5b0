import { describe, expect, it } from 'vitest';
import { contentRange, parseRange } from '../../src/oci/range.ts';

// Cases from the distribution-spec conformance suite (2048-byte blob).
describe('parseRange', () => {
  const size = 2048;
  it('no header is the full body', () => expect(parseRange(undefined, size)).toEqual({ kind: 'full' }));
  it('closed range', () => expect(parseRange('bytes=500-1499', size)).toEqual({ kind: 'partial', range: { start: 500, end: 1499 } }));
  it('open-ended range', () => expect(parseRange('bytes=500-', size)).toEqual({ kind: 'partial', range: { start: 500, end: 2047 } }));
  it('suffix range', () => expect(parseRange('bytes=-500', size)).toEqual({ kind: 'partial', range: { start: 1548, end: 2047 } }));
  it('suffix longer than the blob is the whole blob', () => expect(parseRange('bytes=-5000', size)).toEqual({ kind: 'partial', range: { start: 0, end: 2047 } }));
  it('end past the blob is clamped', () => expect(parseRange('bytes=2000-5000', size)).toEqual({ kind: 'partial', range: { start: 2000, end: 2047 } }));
  it('end before start is unsatisfiable', () => expect(parseRange('bytes=500-0', size)).toEqual({ kind: 'unsatisfiable' }));
  it('start past the blob is unsatisfiable', () => expect(parseRange('bytes=5000-10000', size)).toEqual({ kind: 'unsatisfiable' }));
  it('start exactly at the size is unsatisfiable', () => expect(parseRange('bytes=2048-', size)).toEqual({ kind: 'unsatisfiable' }));
  it('zero-length suffix is unsatisfiable', () => expect(parseRange('bytes=-0', size)).toEqual({ kind: 'unsatisfiable' }));
  it('malformed and multi-range headers are ignored', () => {
    expect(parseRange('items=0-1', size)).toEqual({ kind: 'full' });
    expect(parseRange('bytes=0-1,5-6', size)).toEqual({ kind: 'full' });
    expect(parseRange('bytes=abc', size)).toEqual({ kind: 'full' });
  });
  it('formats Content-Range', () => expect(contentRange({ start: 10, end: 19 }, 155)).toBe('bytes 10-19/155'));
});
