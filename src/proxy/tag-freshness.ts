// How long a cached tag is served without asking the upstream, per repository and tag pattern
// (cache.tagFreshness), first matching rule wins, else cache.tagTtlSeconds. A pattern is
// `<repository glob>:<tag glob>` over the routed name (docker.io/library/alpine:3.20): the
// repository glob as in access rules (auth/repository-glob.ts), the tag glob with `*` for any
// characters. `immutable` tags are never revalidated once cached (release tags that are never
// moved); 0 revalidates every pull.
import { compileGlob, GlobSyntaxError, type RepositoryGlob } from '../auth/repository-glob.ts';

export interface TagFreshnessRule {
  readonly match: string;
  readonly ttlSeconds: number | 'immutable';
}

interface CompiledRule {
  readonly repository: RepositoryGlob;
  readonly tag: RegExp;
  readonly ttlMs: number;
}

const TAG_GLOB = /^[A-Za-z0-9_.*-]{1,128}$/;

export class TagFreshness {
  readonly #defaultMs: number;
  readonly #rules: readonly CompiledRule[];

  constructor(defaultTtlSeconds: number, rules: readonly TagFreshnessRule[] = []) {
    this.#defaultMs = defaultTtlSeconds * 1000;
    this.#rules = rules.map(compileRule);
  }

  /** How long this tag stays fresh after the upstream last confirmed it (Infinity: for good). */
  ttlMs(upstream: string, repository: string, tag: string): number {
    if (this.#rules.length === 0) return this.#defaultMs;
    const name = `${upstream}/${repository}`;
    for (const rule of this.#rules) if (rule.tag.test(tag) && rule.repository.matches(name)) return rule.ttlMs;
    return this.#defaultMs;
  }
}

function compileRule(rule: TagFreshnessRule): CompiledRule {
  const { repository, tag } = splitPattern(rule.match);
  return {
    repository: compileGlob(repository),
    tag: new RegExp(`^${tag.split('*').map(escapeRegExp).join('.*')}$`),
    ttlMs: rule.ttlSeconds === 'immutable' ? Infinity : rule.ttlSeconds * 1000,
  };
}

/** `<repository glob>:<tag glob>`: the tag after the last ':' that follows the last '/' (a host may have a port). */
export function splitPattern(pattern: string): { repository: string; tag: string } {
  const colon = pattern.lastIndexOf(':');
  if (colon <= pattern.lastIndexOf('/') || colon === pattern.length - 1) {
    throw new GlobSyntaxError(pattern, 'expected <repository glob>:<tag glob>, e.g. docker.io/library/**:v* or **:latest');
  }
  const tag = pattern.slice(colon + 1);
  if (!TAG_GLOB.test(tag)) throw new GlobSyntaxError(pattern, `tag glob ${JSON.stringify(tag)} may hold only tag characters and *`);
  const repository = pattern.slice(0, colon);
  compileGlob(repository); // throws on a bad repository glob
  return { repository, tag };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
