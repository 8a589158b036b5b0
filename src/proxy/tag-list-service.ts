// Tag lists: fetched whole from the upstream (following its pagination), cached with the same
// freshness window as tags, served stale when the upstream has no answer. Sorting and n/last
// paging are done here, never trusted to the upstream (distribution 2.8 ignores both).
import type { Logger } from 'pino';
import { NameUnknownError, UpstreamProtocolError } from '../errors.ts';
import type { ManifestStore, RepoKey } from '../cache/manifest-store.ts';
import { askUpstream, type UpstreamHandle } from './upstream-handle.ts';
import { headerValue, upstreamAnswerError } from './upstream-answer.ts';
import { readUpstreamBody } from './read-body.ts';
import { SingleFlight } from './single-flight.ts';
import { upstreamOrFallback } from './stale-fallback.ts';

const MAX_PAGES = 100;
const MAX_PAGE_BYTES = 8 * 1024 * 1024;

export interface TagListResult {
  readonly tags: readonly string[];
  readonly cache: 'hit' | 'miss' | 'stale';
}

export class TagListService {
  readonly #store: ManifestStore;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #flights = new SingleFlight<TagListResult>();

  constructor(deps: { store: ManifestStore; tagTtlSeconds: number; logger: Logger; now?: () => number }) {
    this.#store = deps.store;
    this.#ttlMs = deps.tagTtlSeconds * 1000;
    this.#now = deps.now ?? Date.now;
    this.#log = deps.logger;
  }

  async list(upstream: UpstreamHandle, repository: string): Promise<TagListResult> {
    const repo: RepoKey = { upstream: upstream.name, repository };
    const cached = await this.#store.getTagList(repo);
    if (cached && (upstream.offline || this.#now() - cached.fetchedAt < this.#ttlMs)) return { tags: cached.tags, cache: 'hit' };
    if (upstream.offline) throw new NameUnknownError(repository);
    const flight = this.#flights.run(`${upstream.name}/${repository}`, async () => {
      const tags = sortTags(await this.#fetchAll(upstream, repository));
      await this.#store.putTagList(repo, { tags, fetchedAt: this.#now() });
      return { tags, cache: 'miss' as const };
    });
    if (!cached) return flight.result;
    const outcome = await upstreamOrFallback(flight, upstream.staleAfterMs);
    if (outcome.ok) return outcome.value;
    upstream.metrics.staleServed.inc({ kind: 'tags', upstream: upstream.name });
    this.#log.debug({ upstream: upstream.name, repository, why: outcome.why }, 'serving cached tag list stale');
    return { tags: cached.tags, cache: 'stale' };
  }

  async #fetchAll(upstream: UpstreamHandle, repository: string): Promise<string[]> {
    const tags = new Set<string>();
    let path: string | undefined = `/v2/${repository}/tags/list`;
    for (let page = 0; path && page < MAX_PAGES; page++) {
      const res = await askUpstream(upstream, { method: 'GET', path, repository, headers: { accept: 'application/json' } });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw upstreamAnswerError(upstream.name, res, () => new NameUnknownError(repository));
      }
      const body = await readUpstreamBody(upstream.name, res.body, MAX_PAGE_BYTES);
      for (const tag of parseTagPage(upstream.name, body)) tags.add(tag);
      path = nextPagePath(headerValue(res.headers.link));
    }
    return [...tags];
  }
}

function parseTagPage(upstream: string, body: Buffer): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new UpstreamProtocolError(upstream, 'tag list is not JSON');
  }
  const tags = (parsed as { tags?: unknown } | null)?.tags;
  // A repository without tags may come back as {"tags": null}.
  if (tags === null || tags === undefined) return [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
    throw new UpstreamProtocolError(upstream, 'tag list has no tags array');
  }
  return tags;
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
  if (n === undefined) return { tags: sorted.slice(start), nextLast: undefined };
  const tags = sorted.slice(start, start + n);
  const more = n > 0 && start + n < sorted.length;
  return { tags, nextLast: more ? tags[tags.length - 1] : undefined };
}
