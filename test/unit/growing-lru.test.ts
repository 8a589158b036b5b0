import { describe, expect, it } from 'vitest';
import { LRUCache } from 'lru-cache';
import { growingLru } from '../../src/growing-lru.ts';

const heldBytes = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

describe('growingLru', () => {
  it('holds at most maxEntries, evicting the least recently used', () => {
    const lru = growingLru<string, number>(3);
    lru.set('a', 1).set('b', 2).set('c', 3);
    expect(lru.get('a')).toBe(1); // a is now the most recent; b the least
    lru.set('d', 4);
    expect([...lru.keys()].sort()).toEqual(['a', 'c', 'd']);
    for (let i = 0; i < 100; i++) lru.set(`k${i}`, i);
    expect(lru.size).toBe(3);
    expect([...lru.keys()].sort()).toEqual(['k97', 'k98', 'k99']);
  });

  it('allocates nothing up front for a large bound, where lru-cache with max allocates for every entry', () => {
    const before = heldBytes();
    const growing = growingLru<string, true>(1_000_000);
    const growingCost = heldBytes() - before;
    const prealloc = new LRUCache<string, true>({ max: 1_000_000 });
    const preallocCost = heldBytes() - before - growingCost;
    expect(preallocCost).toBeGreaterThan(20_000_000); // ~28 bytes an entry
    expect(growingCost).toBeLessThan(1_000_000);
    growing.set('x', true);
    prealloc.set('x', true);
    expect(growing.has('x') && prealloc.has('x')).toBe(true);
  });
});
