// A hit thread's view of a fill the main thread runs (src/threads/followed-fill.ts) believes
// only progress lines the main thread could have sent: growing counts that hold the last byte
// back until `end <length>`. Anything else fails the view, which cuts the client.
import { describe, expect, it } from 'vitest';
import { FillView } from '../../src/threads/followed-fill.ts';

const view = (size: number) => new FillView(size, () => Promise.reject(new Error('not opened here')));

describe('FillView', () => {
  it('follows growing counts, and ends only at the announced length', async () => {
    const fill = view(100);
    const woken = fill.changed();
    expect(fill.line('0')).toBe(true);
    await woken;
    expect(fill.line('40')).toBe(true);
    expect(fill.line('40')).toBe(true);
    expect(fill.line('99')).toBe(true);
    expect([fill.readable, fill.ended, fill.state]).toEqual([99, false, 'filling']);
    expect(fill.line('end 100')).toBe(true);
    expect([fill.readable, fill.written, fill.ended, fill.state]).toEqual([100, 100, true, 'complete']);
    expect(fill.line('100')).toBe(false);
  });

  it('refuses what the main thread never sends', () => {
    for (const bad of ['100', '101', 'end 99', 'end 101', '-1', '1e3', ' 5', '5 ', '0x10', '007', '', 'end', 'failed', '9'.repeat(17)]) {
      expect(view(100).line(bad), bad).toBe(false);
    }
    const fill = view(100);
    fill.line('50');
    expect(fill.line('49')).toBe(false);
  });

  it('lets an empty blob end at once, and fails waiters when told', async () => {
    const empty = view(0);
    expect(empty.line('0')).toBe(true);
    expect(empty.line('end 0')).toBe(true);
    const fill = view(10);
    const woken = fill.changed();
    fill.fail(new Error('cut'));
    await woken;
    expect([fill.state, fill.error?.message, fill.line('5')]).toEqual(['failed', 'cut', false]);
  });
});
