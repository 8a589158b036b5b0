// The `wharf` command (bin/wharf.js), and what its first line (`#!/usr/bin/env -S VAR=1 node --flag`)
// gives Node: the flags and the environment, for tests, the image check and the bench to start Node as users do.
import { readFileSync } from 'node:fs';

export const WHARF_ENTRY = new URL('../../bin/wharf.js', import.meta.url).pathname;

export function wharfShebang(): { nodeFlags: string[]; env: Record<string, string> } {
  const words = readFileSync(WHARF_ENTRY, 'utf8').split('\n')[0]!.split(/\s+/);
  return {
    nodeFlags: words.filter((w) => w.startsWith('--')),
    env: Object.fromEntries(words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)])),
  };
}
