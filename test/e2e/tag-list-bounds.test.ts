// Tag lists against a hostile upstream: a list past cache.tagListMaxBytes or
// cache.tagListMaxTags is refused with a clear error (never cut short, never cached), reading
// stops at the budget, duplicates across pages count once, and a page dripped slowly is cut at
// timeouts.manifestTotalMs (stale copy if cached, else 503).
import { readdir, stat } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bigPages, startTagListUpstream, tagPage, type TagListUpstream } from '../support/tag-list-upstream.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { metricValue } from '../support/metrics.ts';

const MAX_TAGS = 1000;
const MAX_BYTES = 64 * 1024;
type OciErrors = { errors: Array<{ code: string; message: string }> };

/** Total bytes of the files under a directory. */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

const tagListFile = (wharf: TestWharf, repository: string) => join(wharf.dataDir, 'manifests', 'repos', 'docker.io', ...repository.split('/'), '_taglist.json');
const exists = (path: string) => stat(path).then(() => true, () => false);

/** Distinct tags t0000..t<n-1>, split over pages that overlap by `overlap` tags, each page shuffled. */
function overlappingPages(n: number, pages: number, overlap: number): string[][] {
  const all = Array.from({ length: n }, (_, i) => `t${String(i).padStart(4, '0')}`);
  const per = Math.ceil(n / pages);
  return Array.from({ length: pages }, (_, p) => {
    const page = all.slice(Math.max(0, p * per - overlap), (p + 1) * per);
    return page.reverse();
  });
}

/** Pages of one tag each, padded with JSON whitespace so that they total exactly `total` bytes. */
function paddedPages(name: string, count: number, total: number): Buffer[] {
  const bare = Array.from({ length: count }, (_, i) => tagPage(name, [`p${i}`]));
  const spare = total - bare.reduce((sum, b) => sum + b.byteLength, 0);
  return bare.map((b, i) => {
    const pad = Math.floor(spare / count) + (i === count - 1 ? spare % count : 0);
    return Buffer.concat([b.subarray(0, b.byteLength - 1), Buffer.alloc(pad, ' '), Buffer.from('}')]);
  });
}

describe('tag list bounds', () => {
  let upstream: TagListUpstream;
  let wharf: TestWharf;
  const logLines: string[] = [];

  const set = (repository: string, pages: Buffer[], opts: { chunked?: boolean } = {}) =>
    upstream.set(repository, { pageCount: pages.length, page: (i) => pages[i]!, ...opts });

  beforeAll(async () => {
    upstream = await startTagListUpstream();
    wharf = await startWharf({
      upstreams: [{ name: 'docker.io', url: upstream.url, default: true }],
      cache: { tagListMaxTags: MAX_TAGS, tagListMaxBytes: MAX_BYTES },
      logLevel: 'warn',
      logDestination: new Writable({
        write(chunk: Buffer, _enc, done) {
          logLines.push(chunk.toString());
          done();
        },
      }),
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  it('merges a multi-page list within the limits, sorted, duplicates across pages counted once', async () => {
    // 1000 distinct tags (exactly tagListMaxTags) sent as 1150 entries over 4 pages.
    const pages = overlappingPages(MAX_TAGS, 4, 50);
    expect(pages.flat().length).toBeGreaterThan(MAX_TAGS);
    set('library/dups', pages.map((tags) => tagPage('library/dups', tags)));
    const res = await fetch(`${wharf.url}/v2/library/dups/tags/list`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { name: string; tags: string[] };
    expect(body.name).toBe('library/dups');
    expect(body.tags).toHaveLength(MAX_TAGS);
    expect(body.tags).toEqual([...new Set(pages.flat())].sort());
    expect(upstream.requests('library/dups')).toBe(4);
    // Cached: the next request is answered without the upstream.
    const again = await fetch(`${wharf.url}/v2/library/dups/tags/list?n=3&last=t0100`);
    expect(await again.json()).toEqual({ name: 'library/dups', tags: ['t0101', 't0102', 't0103'] });
    expect(again.headers.get('x-wharf-cache')).toBe('hit');
    expect(upstream.requests('library/dups')).toBe(4);
  });

  it('takes a list of exactly tagListMaxBytes and refuses one byte more', async () => {
    set('library/exact', paddedPages('library/exact', 4, MAX_BYTES));
    const exact = await fetch(`${wharf.url}/v2/library/exact/tags/list`);
    expect(exact.status).toBe(200);
    expect(await exact.json()).toEqual({ name: 'library/exact', tags: ['p0', 'p1', 'p2', 'p3'] });

    set('library/over', paddedPages('library/over', 4, MAX_BYTES + 1), { chunked: true });
    const over = await fetch(`${wharf.url}/v2/library/over/tags/list`);
    expect(over.status).toBe(502);
    const { errors } = (await over.json()) as OciErrors;
    expect(errors[0]!.message).toMatch(/tagListMaxBytes/);
  });

  for (const chunked of [false, true]) {
    it(`refuses a list past tagListMaxBytes (${chunked ? 'chunked' : 'Content-Length'}), caches nothing and asks again next time`, async () => {
      const repository = `library/bytes-${chunked ? 'chunked' : 'sized'}`;
      // 4 pages of 24 KiB: 96 KiB, past the 64 KiB budget on the third page.
      const page = bigPages({ pageBytes: 24 * 1024, tagLength: 120, prefix: chunked ? 'c' : 's' });
      upstream.set(repository, { pageCount: 4, page, chunked });
      const sizeBefore = await treeBytes(wharf.dataDir);

      const first = await fetch(`${wharf.url}/v2/${repository}/tags/list`);
      expect(first.status).toBe(502);
      const body = (await first.json()) as OciErrors;
      expect(body.errors[0]!.code).toBe('UNKNOWN');
      expect(body.errors[0]!.message).toMatch(/more than 65536 bytes.*cache\.tagListMaxBytes/);
      const asked = upstream.requests(repository);
      expect(asked).toBe(3); // the third page crosses the budget; the fourth is never asked for

      // Nothing cached: no tag list file, the store did not grow by the list's size.
      expect(await exists(tagListFile(wharf, repository))).toBe(false);
      expect((await treeBytes(wharf.dataDir)) - sizeBefore).toBeLessThan(8 * 1024);
      const second = await fetch(`${wharf.url}/v2/${repository}/tags/list`);
      expect(second.status).toBe(502);
      await second.arrayBuffer();
      expect(upstream.requests(repository)).toBe(asked * 2);
    });
  }

  it('refuses a list past tagListMaxTags with a clear error and caches nothing', async () => {
    // 3 pages of 400 distinct tags: 1200 > 1000, and only ~15 KiB (well within the bytes).
    const pages = [0, 1, 2].map((p) => tagPage('library/many', Array.from({ length: 400 }, (_, i) => `m${p}-${i}`)));
    set('library/many', pages);
    const first = await fetch(`${wharf.url}/v2/library/many/tags/list`);
    expect(first.status).toBe(502);
    const { errors } = (await first.json()) as OciErrors;
    expect(errors[0]!.message).toMatch(/more than 1000 tags.*cache\.tagListMaxTags/);
    // The operator is told once, with the repository and the bound.
    const warned = logLines.filter((l) => l.includes('tag list refused') && l.includes('library/many'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/cache\.tagListMaxTags/);
    expect(await exists(tagListFile(wharf, 'library/many'))).toBe(false);
    const asked = upstream.requests('library/many');
    const second = await fetch(`${wharf.url}/v2/library/many/tags/list`);
    expect(second.status).toBe(502);
    await second.arrayBuffer();
    expect(upstream.requests('library/many')).toBe(asked * 2);
  });

  it('stops reading a huge list at the budget instead of downloading it', async () => {
    // 10 chunked pages of 8 MiB: 80 MiB offered, 64 KiB allowed.
    upstream.set('library/huge', { pageCount: 10, page: bigPages({ pageBytes: 8 << 20, tagLength: 100, prefix: 'h' }), chunked: true });
    const res = await fetch(`${wharf.url}/v2/library/huge/tags/list`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as OciErrors).errors[0]!.message).toMatch(/tagListMaxBytes/);
    expect(upstream.requests('library/huge')).toBe(1);
    // What wharf read plus what the sockets buffered before it hung up: the kernel's send buffer
    // alone may take a few MiB (up to net.ipv4.tcp_wmem's maximum, 4 MiB here, and 4 MiB was
    // seen), so the bound is less than the first page, which a reader without the budget (the
    // old 8 MiB per page) took whole.
    expect(upstream.bytesSent('library/huge')).toBeLessThan(8 << 20);
    expect(await exists(tagListFile(wharf, 'library/huge'))).toBe(false);
  });

  it('answers a page that is not a tag list with a 502, and {"tags": null} as no tags', async () => {
    set('library/garbage', [tagPage('library/garbage', ['a']), Buffer.from('{"name":"x","tags":["b",')]);
    const garbage = await fetch(`${wharf.url}/v2/library/garbage/tags/list`);
    expect(garbage.status).toBe(502);
    expect(((await garbage.json()) as OciErrors).errors[0]!.message).toMatch(/tag list/);
    set('library/none', [Buffer.from('{"name":"library/none","tags":null}')]);
    const none = await fetch(`${wharf.url}/v2/library/none/tags/list`);
    expect(await none.json()).toEqual({ name: 'library/none', tags: [] });
  });
});

describe('long tag lists within the default bounds', () => {
  let upstream: TagListUpstream;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startTagListUpstream();
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  it('answers a list of many pieces with the exact JSON and Content-Length, for GET and HEAD', async () => {
    // ~240 KB of JSON: several 64 KiB pieces; odd tags (non-ASCII, escapes) test the byte count.
    const pages = [0, 1, 2].map((p) => Array.from({ length: 4000 }, (_, i) => `v${p}.${i}-${'é"\\'.repeat(i % 3)}`));
    upstream.set('library/long', { pageCount: 3, page: (p) => tagPage('library/long', pages[p]!) });
    const sorted = pages.flat().sort();
    const expected = JSON.stringify({ name: 'library/long', tags: sorted });
    const res = await request(`${wharf.url}/v2/library/long/tags/list`);
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(text).toBe(expected);
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(expected)));
    const head = await request(`${wharf.url}/v2/library/long/tags/list`, { method: 'HEAD' });
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(expected)));
    expect(await head.body.text()).toBe('');
    const page = await request(`${wharf.url}/v2/library/long/tags/list?${new URLSearchParams({ n: '2', last: sorted[5000]! })}`);
    expect(await page.body.json()).toEqual({ name: 'library/long', tags: sorted.slice(5001, 5003) });
  });
});

describe('tag list pages dripped slowly', () => {
  const DEADLINE_MS = 1000;
  let upstream: TagListUpstream;
  let wharf: TestWharf;
  // 4 KiB at 16 bytes per 100 ms: 25 s for the page, never idle long enough for bodyIdleMs.
  const drip = { bytes: 16, everyMs: 100 };
  const dripPage = (name: string) => tagPage(name, Array.from({ length: 400 }, (_, i) => `d${i}`));

  beforeAll(async () => {
    upstream = await startTagListUpstream();
    wharf = await startWharf({
      upstreams: [{ name: 'docker.io', url: upstream.url, default: true }],
      timeouts: { manifestTotalMs: DEADLINE_MS },
      // Longer than the deadline, so that only the deadline can end the wait; TTL 0: always revalidate.
      resilience: { staleAfterMs: 30_000 },
      tagTtlSeconds: 0,
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  it('cuts a dripping page at timeouts.manifestTotalMs: 503 when nothing is cached', async () => {
    upstream.set('library/drip', { pageCount: 1, page: () => dripPage('library/drip'), drip });
    const timeouts = () => metricValue(wharf.url, 'wharf_upstream_failures_total', { reason: 'total-timeout' });
    const timeoutsBefore = await timeouts();
    const started = Date.now();
    const res = await fetch(`${wharf.url}/v2/library/drip/tags/list`, { signal: AbortSignal.timeout(10_000) });
    const took = Date.now() - started;
    expect(res.status).toBe(503);
    const { errors } = (await res.json()) as OciErrors;
    expect(errors[0]!.code).toBe('UNAVAILABLE');
    expect(errors[0]!.message).toMatch(/answer not complete within 1000 ms/);
    expect(await timeouts()).toBe(timeoutsBefore + 1);
    expect(took).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
    expect(took).toBeLessThan(DEADLINE_MS + 2000);
  });

  it('serves the cached list stale when a revalidation page drips past the deadline', async () => {
    const page = dripPage('library/drip-stale');
    upstream.set('library/drip-stale', { pageCount: 1, page: () => page });
    const fresh = await fetch(`${wharf.url}/v2/library/drip-stale/tags/list`);
    expect(fresh.status).toBe(200);
    const cached = await fresh.json();

    upstream.set('library/drip-stale', { pageCount: 1, page: () => page, drip });
    const started = Date.now();
    const res = await fetch(`${wharf.url}/v2/library/drip-stale/tags/list`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-wharf-cache')).toBe('stale');
    expect(await res.json()).toEqual(cached);
    expect(Date.now() - started).toBeLessThan(DEADLINE_MS + 2000);
  });
});

describe('tag list bounds with hit threads (threads: 2)', () => {
  let upstream: TagListUpstream;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startTagListUpstream();
    wharf = await startWharf({
      upstreams: [{ name: 'docker.io', url: upstream.url, default: true }],
      cache: { tagListMaxTags: 100, tagListMaxBytes: MAX_BYTES },
      threads: 2,
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  it('refuses an over-limit list whichever thread takes the request, and lists a short one', async () => {
    upstream.set('library/t-over', { pageCount: 2, page: (p) => tagPage('library/t-over', Array.from({ length: 60 }, (_, i) => `o${p}-${i}`)) });
    upstream.set('library/t-ok', { pageCount: 2, page: (p) => tagPage('library/t-ok', [`k${p}`, 'shared']) });
    // A connection of its own per request, so that the kernel spreads them over both threads.
    for (let i = 0; i < 6; i++) {
      const agent = new Agent({ pipelining: 0 });
      try {
        const over = await request(`${wharf.url}/v2/library/t-over/tags/list`, { dispatcher: agent });
        expect(over.statusCode).toBe(502);
        expect(((await over.body.json()) as OciErrors).errors[0]!.message).toMatch(/more than 100 tags/);
        const ok = await request(`${wharf.url}/v2/library/t-ok/tags/list`, { dispatcher: agent });
        expect(ok.statusCode).toBe(200);
        expect(await ok.body.json()).toEqual({ name: 'library/t-ok', tags: ['k0', 'k1', 'shared'] });
      } finally {
        await agent.close();
      }
    }
    expect(upstream.requests('library/t-over')).toBe(12);
  });
});
