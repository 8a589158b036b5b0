// Tag lists: fetched from the upstream (following its pagination), cached with the same
// freshness window as tags, served stale when the upstream has no answer. Sorting and n/last
// paging are done here, never trusted to the upstream (distribution 2.8 ignores both).
//
// An upstream's list is bounded: at most maxBytes read over all its pages and maxTags distinct
// tags (cache.tagListMaxBytes / tagListMaxTags). A longer list is refused with an error, never
// cut short, and nothing is cached. Pages are parsed as they stream (a page is never held
// whole) and each must arrive whole within timeouts.manifestTotalMs: a page dripped slower than
// that is an upstream with no answer (stale copy if cached, else 503).
import type { Logger } from 'pino';
import { NameUnknownError, RegistryError, TagListTooLargeError, UpstreamProtocolError } from '../errors.ts';
import type { ManifestStore, RepoKey } from '../cache/manifest-store.ts';
import type { Upstream } from './upstream.ts';
import type { UpstreamBody } from './upstream-client.ts';
import { contentLength, headerValue } from './upstream-answer.ts';
import { SingleFlight } from './single-flight.ts';
import { upstreamOrFallback } from './stale-fallback.ts';
import { TagPageParser, TagPageSyntaxError } from './tag-page-parser.ts';

/** Registries page by 50 to 1000 tags; past this many pages a list is refused like a long one. */
const MAX_PAGES = 1000;

export interface TagListResult {
  readonly tags: readonly string[];
  readonly cache: 'hit' | 'miss' | 'stale';
}

export interface TagListServiceDeps {
  readonly store: ManifestStore;
  readonly tagTtlSeconds: number;
  /** Most distinct tags kept for one repository (cache.tagListMaxTags). */
  readonly maxTags: number;
  /** Most bytes read from the upstream for one repository's list, all pages (cache.tagListMaxBytes). */
  readonly maxBytes: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** One list being read: what it holds so far and what it may still take. */
interface ListRead {
  readonly upstream: Upstream;
  readonly repository: string;
  readonly tags: Set<string>;
  bytesLeft: number;
}

export class TagListService {
  readonly #store: ManifestStore;
  readonly #ttlMs: number;
  readonly #maxTags: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #flights = new SingleFlight<TagListResult>();

  constructor(deps: TagListServiceDeps) {
    this.#store = deps.store;
    this.#ttlMs = deps.tagTtlSeconds * 1000;
    this.#maxTags = deps.maxTags;
    this.#maxBytes = deps.maxBytes;
    this.#now = deps.now ?? Date.now;
    this.#log = deps.logger;
  }

  async list(upstream: Upstream, repository: string): Promise<TagListResult> {
    const repo: RepoKey = { upstream: upstream.name, repository };
    const cached = await this.#store.getTagList(repo);
    if (cached && (upstream.offline || this.#now() - cached.fetchedAt < this.#ttlMs)) return { tags: cached.tags, cache: 'hit' };
    if (upstream.offline) throw new NameUnknownError(repository);
    const flight = this.#flights.run(`${upstream.name}/${repository}`, async () => {
      const tags = sortTags(await this.#fetchAll(upstream, repository));
      await this.#store.putTagList(repo, { tags, fetchedAt: this.#now() });
      return { tags, cache: 'miss' as const };
    });
    flight.result.catch((err: unknown) => {
      // Once per fetch (not per waiting client): the operator's cue to raise a bound.
      if (err instanceof TagListTooLargeError && !flight.shared) this.#log.warn({ upstream: upstream.name, repository, why: err.message }, 'tag list refused');
    });
    if (!cached) return flight.result;
    const outcome = await upstreamOrFallback(flight, upstream.staleAfterMs);
    if (outcome.ok) return outcome.value;
    upstream.servedStale('tags');
    this.#log.debug({ upstream: upstream.name, repository, why: outcome.why }, 'serving cached tag list stale');
    return { tags: cached.tags, cache: 'stale' };
  }

  async #fetchAll(upstream: Upstream, repository: string): Promise<Set<string>> {
    const read: ListRead = { upstream, repository, tags: new Set(), bytesLeft: this.#maxBytes };
    let path: string | undefined = `/v2/${repository}/tags/list`;
    for (let page = 0; path; page++) {
      if (page === MAX_PAGES) throw new TagListTooLargeError(upstream.name, repository, `${MAX_PAGES} pages`);
      path = await this.#fetchPage(read, path);
    }
    return read.tags;
  }

  /** Reads one page into read.tags; returns the path of the next page, if any. */
  async #fetchPage(read: ListRead, path: string): Promise<string | undefined> {
    const { upstream, repository } = read;
    let body: UpstreamBody | undefined;
    let complete = false;
    try {
      // small: the page, body included, must be whole within the deadline (a drip is cut there).
      const res = await upstream.get({ path, repository, accept: 'application/json', small: true, notFound: () => new NameUnknownError(repository) });
      body = res.body;
      const declared = contentLength(res.headers);
      if (declared !== undefined && declared > read.bytesLeft) throw this.#tooManyBytes(read);
      const parser = new TagPageParser((tag) => this.#add(read, tag));
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        read.bytesLeft -= chunk.byteLength;
        if (read.bytesLeft < 0) throw this.#tooManyBytes(read);
        parser.write(chunk);
      }
      parser.end();
      complete = true;
      return nextPagePath(headerValue(res.headers.link));
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      if (err instanceof TagPageSyntaxError) throw new UpstreamProtocolError(upstream.name, err.message);
      // The connection broke, went idle or ran past its deadline mid-body.
      throw upstream.interruptedBody(err);
    } finally {
      // A page left early (a bound, a bad page) is not read to its end: drop the connection.
      // The listener keeps undici's "aborted" error of a body nobody reads from being thrown.
      if (!complete) body?.on('error', () => undefined).destroy();
    }
  }

  #add(read: ListRead, tag: string): void {
    if (read.tags.has(tag)) return; // the same tag on two pages counts once
    if (read.tags.size >= this.#maxTags) throw new TagListTooLargeError(read.upstream.name, read.repository, `${this.#maxTags} tags (cache.tagListMaxTags)`);
    read.tags.add(tag);
  }

  #tooManyBytes(read: ListRead): TagListTooLargeError {
    return new TagListTooLargeError(read.upstream.name, read.repository, `${this.#maxBytes} bytes (cache.tagListMaxBytes)`);
  }
}

/** The path of the next page from an RFC 5988 Link header, relative to the registry root. */
export function nextPagePath(link: string | undefined): string | undefined {
  if (!link) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  if (!m) return undefined;
  const target = m[1]!;
  const at = target.indexOf('/v2/');
  return at === -1 ? undefined : target.slice(at);
}

/** Lexical (code point) order, as the distribution spec allows. */
export function sortTags(tags: Iterable<string>): string[] {
  return [...tags].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface TagPage {
  readonly tags: readonly string[];
  /** Set when more tags follow: the `last` for the next page. */
  readonly nextLast: string | undefined;
}

/** Applies the spec's `last` (strictly after) and `n` (page size) to a sorted list. */
export function pageTags(sorted: readonly string[], n: number | undefined, last: string | undefined): TagPage {
  let start = 0;
  if (last !== undefined) {
    start = sorted.findIndex((t) => t > last);
    if (start === -1) start = sorted.length;
  }
  if (n === undefined) return { tags: start === 0 ? sorted : sorted.slice(start), nextLast: undefined };
  const tags = sorted.slice(start, start + n);
  const more = n > 0 && start + n < sorted.length;
  return { tags, nextLast: more ? tags[tags.length - 1] : undefined };
}
