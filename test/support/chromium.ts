// Debian's headless Chromium as a real browser for wharf's status page: loads the page, runs
// its scripts, and returns the DOM they produced (or a screenshot). Flags as this machine
// needs them: no sandbox as root, no background networking (the network is closed).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run.ts';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Lets the page's fetch and timers run before the DOM is taken.
  '--virtual-time-budget=4000',
];

async function withProfile<T>(work: (profile: string) => Promise<T>): Promise<T> {
  const profile = await mkdtemp(join(tmpdir(), 'wharf-chromium-'));
  try {
    return await work(profile);
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

export function renderedDom(url: string): Promise<string> {
  return withProfile(async (profile) => (await run(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, '--dump-dom', url], { timeoutMs: 60_000 })).stdout);
}

export function screenshot(url: string, path: string): Promise<void> {
  return withProfile(async (profile) => {
    await run(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, '--window-size=1100,900', `--screenshot=${path}`, url], { timeoutMs: 60_000 });
  });
}
