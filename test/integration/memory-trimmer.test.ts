// The memory addon really gives freed malloc memory back, and the trimmer calls it on its interval
// and stops when told. The addon runs in a child Node with --expose-gc, so the test can free what
// it allocated and read its own RSS around the trim.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { MEMORY_ADDON_PATH, MemoryTrimmer } from '../../src/memory-trimmer.ts';

const run = promisify(execFile);

// 1 600 buffers of 64 KiB (under glibc's mmap threshold, so they come from an arena), every
// eighth kept: the free chunks lie between live ones, where free() alone cannot return them.
const CHILD = `
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
const addon = createRequire(import.meta.url)(${JSON.stringify(MEMORY_ADDON_PATH)});
const anonMB = () => Number(/RssAnon:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
let buffers = Array.from({ length: 1600 }, () => Buffer.allocUnsafeSlow(64 * 1024).fill(1));
const kept = buffers.filter((_, i) => i % 8 === 0);
buffers = undefined;
for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); }
const before = anonMB();
const released = addon.trim();
console.log(JSON.stringify({ before, after: anonMB(), released, kept: kept.length }));
`;

describe('memory addon', () => {
  it('returns the free pages between live allocations to the kernel', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD]);
    const r = JSON.parse(stdout) as { before: number; after: number; released: boolean; kept: number };
    expect(r.kept).toBe(200);
    expect(r.released).toBe(true);
    // ~87 MB were freed; glibc's own free() kept them (before), the trim gives most back.
    expect(r.before - r.after).toBeGreaterThan(50);
  });
});

describe('MemoryTrimmer', () => {
  it('loads the addon npm ci builds, and trims on its interval until stopped', async () => {
    const trimmer = MemoryTrimmer.start(pino({ level: 'silent' }), 10);
    // npm ci builds the addon on every machine wharf supports; its absence is a failure here.
    expect(trimmer).toBeInstanceOf(MemoryTrimmer);
    trimmer!.stop();

    let trims = 0;
    const counting = new MemoryTrimmer({ trim: () => (trims++, false) }, 10);
    await new Promise((r) => setTimeout(r, 75));
    counting.stop();
    const stoppedAt = trims;
    expect(stoppedAt).toBeGreaterThanOrEqual(4);
    await new Promise((r) => setTimeout(r, 50));
    expect(trims).toBe(stoppedAt);
  });
});
