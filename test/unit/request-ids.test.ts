import { describe, expect, it } from 'vitest';
import { RequestIds } from '../../src/http/request-ids.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('RequestIds', () => {
  it('gives UUID-shaped ids, none twice', () => {
    const ids = new RequestIds();
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = ids.next();
      expect(id).toMatch(UUID_V4);
      seen.add(id);
    }
    expect(seen.size).toBe(10_000);
  });

  it('gives two instances (two processes or threads) ids that do not meet', () => {
    const a = new RequestIds();
    const b = new RequestIds();
    expect(a.next().slice(0, 24)).not.toBe(b.next().slice(0, 24));
  });
});
