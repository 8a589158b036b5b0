import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { growingLru } from '../../src/growing-lru.ts';

const run = promisify(execFile);

// In a child Node with --expose-gc, so garbage of the test runner's own cannot move the figures.
const MEASURE = `
import { LRUCache } from 'lru-cache';
import { growingLru } from ${JSON.stringify(new URL('../../src/growing-lru.ts', import.meta.url).href)};
const held = () => { globalThis.gc(); const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
const base = held();
const growing = growingLru(1_000_000);
const afterGrowing = held();
const prealloc = new LRUCache({ max: 1_000_000 });
const afterPrealloc = held();
growing.set('x', true);
prealloc.set('x', true);
console.log(JSON.stringify({ growing: afterGrowing - base, prealloc: afterPrealloc - afterGrowing, both: growing.has('x') && prealloc.has('x') }));
`;

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

  it('allocates nothing up front for a large bound, where lru-cache with max allocates for every entry', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', '--input-type=module', '-e', MEASURE], { cwd: new URL('../..', import.meta.url).pathname });
    const r = JSON.parse(stdout) as { growing: number; prealloc: number; both: boolean };
    expect(r.prealloc).toBeGreaterThan(20_000_000); // ~28 bytes an entry
    expect(r.growing).toBeLessThan(1_000_000);
    expect(r.both).toBe(true);
  });
});
