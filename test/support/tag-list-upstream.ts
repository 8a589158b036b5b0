// A hostile registry stand-in for tag lists: a node:http server on 127.0.0.1 that answers
// /v2/ with 200 and /v2/<repo>/tags/list with the pages a test set for that repository, linked
// with `Link: <...>; rel="next"`, of any size and count, optionally dripped slowly. It counts
// the requests and bytes it sent so a test can see what wharf asked for and read.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { drained } from '../../src/http/follow-fill.ts';

export interface TagListSpec {
  readonly pageCount: number;
  /** The body of page i (0-based); called once per request for it. */
  page(i: number): Buffer;
  /** Send no Content-Length (chunked), so only the bytes read can tell the size. */
  readonly chunked?: boolean;
  /** Slow drip: this many bytes per tick instead of the whole page at once. */
  readonly drip?: { readonly bytes: number; readonly everyMs: number };
}

export interface TagListUpstream {
  readonly url: string;
  set(repository: string, spec: TagListSpec): void;
  /** tags/list requests received for a repository (all pages). */
  requests(repository: string): number;
  /** Body bytes written for a repository, all requests (what wharf read, plus socket buffers). */
  bytesSent(repository: string): number;
  stop(): Promise<void>;
}

export async function startTagListUpstream(): Promise<TagListUpstream> {
  const specs = new Map<string, TagListSpec>();
  const requests = new Map<string, number>();
  const sent = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    void answer(req, res).catch(() => res.destroy());
  });

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      res.end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname);
    const spec = m ? specs.get(m[1]!) : undefined;
    if (!m || !spec) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}');
      return;
    }
    const repository = m[1]!;
    requests.set(repository, (requests.get(repository) ?? 0) + 1);
    const i = Number(url.searchParams.get('page') ?? '0');
    const body = spec.page(i);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (!spec.chunked) headers['Content-Length'] = String(body.byteLength);
    if (i + 1 < spec.pageCount) headers.Link = `</v2/${repository}/tags/list?page=${i + 1}>; rel="next"`;
    res.writeHead(200, headers);
    const step = spec.drip?.bytes ?? 256 * 1024;
    for (let at = 0; at < body.byteLength; at += step) {
      if (res.destroyed) return;
      const piece = body.subarray(at, at + step);
      sent.set(repository, (sent.get(repository) ?? 0) + piece.byteLength);
      const flushed = res.write(piece);
      if (spec.drip) await sleep(spec.drip.everyMs);
      else if (!flushed) await drained(res);
    }
    res.end();
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    set: (repository, spec) => specs.set(repository, spec),
    requests: (repository) => requests.get(repository) ?? 0,
    bytesSent: (repository) => sent.get(repository) ?? 0,
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A tag list page as registries send it. */
export function tagPage(name: string, tags: readonly string[]): Buffer {
  return Buffer.from(JSON.stringify({ name, tags }));
}

/**
 * Pages of about pageBytes each, of distinct tags of tagLength characters (distinct across pages
 * too), built once per page and shared by every repository that uses the same generator.
 */
export function bigPages(opts: { pageBytes: number; tagLength: number; prefix?: string }): (i: number) => Buffer {
  const built = new Map<number, Buffer>();
  const perPage = Math.max(1, Math.floor((opts.pageBytes - 32) / (opts.tagLength + 3)));
  return (i) => {
    let page = built.get(i);
    if (!page) {
      const tags: string[] = [];
      for (let t = 0; t < perPage; t++) {
        const head = `${opts.prefix ?? 't'}${i}-${t}-`;
        tags.push(head.padEnd(opts.tagLength, 'x'));
      }
      page = tagPage('big', tags);
      built.set(i, page);
    }
    return page;
  };
}

/** How many distinct tags each bigPages page holds. */
export function bigPageTags(opts: { pageBytes: number; tagLength: number }): number {
  return Math.max(1, Math.floor((opts.pageBytes - 32) / (opts.tagLength + 3)));
}
