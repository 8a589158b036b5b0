// One wharf process (bin/wharf.js, default tag list limits: 16 MiB and 100 000 tags) fed many
// large tag lists, over and within the limits: its resident memory stays bounded while it
// works, and what it keeps afterwards (RSS after a full, memory-reducing GC asked for through
// the inspector on 127.0.0.1) is small: no list, page or body is retained beyond the bounded
// in-memory cache. Before the limits, one 30-page list of ~7 MiB pages took wharf from 158 MB
// to ~1 GB, and it stayed there.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bigPages, bigPageTags, startTagListUpstream, type TagListUpstream } from '../support/tag-list-upstream.ts';
import { startWharfProcess, type WharfProcess } from '../support/wharf-process.ts';
import { stopProcess } from '../support/stop-process.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { wharfShebang } from '../support/wharf-entry.ts';

const MiB = 2 ** 20;
// Over the limits: 10 pages of 6 MiB (60 MiB, 600 000 tags) per repository.
const OVER = { pageBytes: 6 * MiB, tagLength: 100, pages: 10, repositories: 4 };
// Within them: 3 pages of 4 MiB of 128-character tags (12 MiB, ~98 000 tags) per repository.
const WITHIN = { pageBytes: 4 * MiB, tagLength: 128, pages: 3, repositories: 8 };
// Above the process's RSS at start: at most while working (the V8 heap grows to a few times
// what is live before it collects), and what is left after a full GC (the in-memory tag list
// cache holds at most 32 MiB). Measured here: ~300 and ~60 MB now, ~1000 and ~530 MB before.
const PEAK_GROWTH_MB = 450;
const RETAINED_GROWTH_MB = 150;

/** A full, memory-reducing GC in the wharf process, through its inspector. */
async function collectGarbage(inspectorUrl: string): Promise<void> {
  const socket = new WebSocket(inspectorUrl);
  try {
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = reject;
    });
    const expression = "gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })";
    const answered = new Promise<void>((resolve) => {
      socket.onmessage = (event) => {
        if ((JSON.parse(String(event.data)) as { id?: number }).id === 1) resolve();
      };
    });
    socket.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression } }));
    await answered;
  } finally {
    socket.close();
  }
  await new Promise((r) => setTimeout(r, 500)); // freed pages are unmapped by a background thread
}

async function rssMb(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

describe('tag list memory', () => {
  let upstream: TagListUpstream;
  let dir: TempDir;
  let wharf: WharfProcess | undefined;
  let url: string;
  let inspector: string;

  beforeAll(async () => {
    expect(bigPageTags(WITHIN) * WITHIN.pages).toBeLessThan(100_000);
    expect(WITHIN.pageBytes * WITHIN.pages).toBeLessThan(16 * MiB);
    upstream = await startTagListUpstream();
    const over = bigPages({ pageBytes: OVER.pageBytes, tagLength: OVER.tagLength, prefix: 'o' });
    const within = bigPages({ pageBytes: WITHIN.pageBytes, tagLength: WITHIN.tagLength, prefix: 'w' });
    for (let r = 0; r < OVER.repositories; r++) upstream.set(`library/over${r}`, { pageCount: OVER.pages, page: over, chunked: r % 2 === 1 });
    for (let r = 0; r < WITHIN.repositories; r++) upstream.set(`library/within${r}`, { pageCount: WITHIN.pages, page: within });
    dir = await makeTempDir('wharf-tag-memory-');
    const config = join(dir.path, 'wharf.yaml');
    await writeFile(
      config,
      `listen: 127.0.0.1:0\ndataDir: ${join(dir.path, 'data')}\nlogLevel: info\nupstreams:\n  - { name: docker.io, url: "${upstream.url}", default: true }\n`,
    );
    // Node's flags as the wharf command gives them (its first line), so memory is what users see.
    const { nodeFlags, env } = wharfShebang();
    expect(nodeFlags.length).toBeGreaterThan(0);
    // --expose-gc and the inspector (127.0.0.1, any port) only to ask for a GC before measuring.
    const flags = [...nodeFlags, '--expose-gc', '--inspect=127.0.0.1:0'];
    wharf = startWharfProcess(['serve', '--config', config], env, flags);
    url = await wharf.listening();
    const ws = /ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/.exec(wharf.stderr());
    expect(ws, wharf.stderr()).not.toBeNull();
    inspector = ws![0];
  });

  afterAll(async () => {
    if (wharf) await stopProcess(wharf.child);
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('keeps RSS bounded over many large lists and gives the memory back', { timeout: 180_000 }, async () => {
    const pid = wharf!.pid;
    // A first small exchange so that the start figure includes the HTTP machinery.
    await (await fetch(`${url}/v2/`)).arrayBuffer();
    await collectGarbage(inspector);
    const start = await rssMb(pid);
    let peak = start.rss;
    const sampler = setInterval(() => {
      rssMb(pid).then((m) => (peak = Math.max(peak, m.rss)), () => undefined);
    }, 100);
    const statuses: Record<string, number> = {};
    try {
      for (let round = 0; round < 2; round++) {
        for (let r = 0; r < Math.max(OVER.repositories, WITHIN.repositories); r++) {
          for (const repo of [r < OVER.repositories && `library/over${r}`, r < WITHIN.repositories && `library/within${r}`]) {
            if (!repo) continue;
            const res = await fetch(`${url}/v2/${repo}/tags/list`);
            const body = (await res.json()) as { tags?: string[] };
            statuses[`${repo} ${res.status}`] = body.tags?.length ?? -1;
          }
        }
      }
    } finally {
      clearInterval(sampler);
    }
    const after = await rssMb(pid);
    peak = Math.max(peak, after.hwm);
    await collectGarbage(inspector);
    const retained = (await rssMb(pid)).rss;
    console.log(`tag list memory: RSS start ${start.rss.toFixed(0)} MB, peak ${peak.toFixed(0)} MB, after ${after.rss.toFixed(0)} MB, after a full GC ${retained.toFixed(0)} MB`);

    expect.soft(peak - start.rss, 'RSS growth at the peak, MB').toBeLessThan(PEAK_GROWTH_MB);
    expect.soft(retained - start.rss, 'RSS growth kept after a full GC, MB').toBeLessThan(RETAINED_GROWTH_MB);
    // Every over-limit list refused, every within-limit list served whole.
    for (let r = 0; r < OVER.repositories; r++) expect.soft(statuses[`library/over${r} 502`], `over${r}`).toBe(-1);
    for (let r = 0; r < WITHIN.repositories; r++) expect.soft(statuses[`library/within${r} 200`], `within${r}`).toBe(bigPageTags(WITHIN) * WITHIN.pages);
  });
});
