// Globs over repository paths such as `docker.io/library/**`. A small matcher instead of a glob
// library: the syntax needed is two wildcards, and a general one would bring braces, extglobs,
// `!` negation and dotfile rules, each a surprise in an access list.
//
//   *    any characters within one path segment (never '/'); `library/*` is not `library/a/b`,
//        nor `library/`
//   **   a whole segment only: zero or more segments; `a/**` matches `a`, `a/b`, `a/b/c`;
//        `a/**/b` matches `a/b` and `a/x/y/b`; `**` alone matches every name
//
// Everything else is literal and must be what a registry host or repository name can hold:
// lowercase letters, digits, '.', '_', '-', ':' (a host's port) and '/' between segments.
// Compiled once to an anchored RegExp; test() on it allocates nothing per call.

export class GlobSyntaxError extends Error {
  readonly glob: string;

  constructor(glob: string, why: string) {
    super(`invalid repository glob ${JSON.stringify(glob)}: ${why}`);
    this.glob = glob;
    this.name = 'GlobSyntaxError';
  }
}

const LITERAL_OR_STAR = /^[a-z0-9._:*-]+$/;
const MAX_GLOB_LENGTH = 512;

export interface RepositoryGlob {
  readonly source: string;
  matches(name: string): boolean;
}

/** One compiled glob, or a literal compared with ===. */
export function compileGlob(glob: string): RepositoryGlob {
  return compileGlobs([glob]);
}

/** Several globs as one matcher (any of them), compiled to a single alternation. */
export function compileGlobs(globs: readonly string[]): RepositoryGlob {
  if (globs.length === 0) throw new GlobSyntaxError('', 'an empty list of globs matches nothing; leave the key out instead');
  const sources = globs.map(globToRegExpSource);
  const source = globs.join(', ');
  if (globs.every((g) => !g.includes('*'))) {
    // Literals only: a Set lookup, no RegExp.
    const names = new Set(globs);
    return { source, matches: (name) => names.has(name) };
  }
  const re = new RegExp(`^(?:${sources.join('|')})$`);
  return { source, matches: (name) => re.test(name) };
}

function globToRegExpSource(glob: string): string {
  if (typeof glob !== 'string' || glob.length === 0) throw new GlobSyntaxError(String(glob), 'empty');
  if (glob.length > MAX_GLOB_LENGTH) throw new GlobSyntaxError(glob.slice(0, 40) + '…', `longer than ${MAX_GLOB_LENGTH} characters`);
  const segments = glob.split('/');
  let out = '';
  let previousWasGlobstar = false;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.length === 0) throw new GlobSyntaxError(glob, "empty path segment (leading, trailing or doubled '/')");
    if (!LITERAL_OR_STAR.test(segment)) {
      throw new GlobSyntaxError(glob, "only lowercase letters, digits, '.', '_', '-', ':', '/' and the wildcards '*' and '**' are allowed");
    }
    if (segment === '**') {
      // Two globstars in a row mean nothing more than one and would let the RegExp backtrack
      // quadratically; refuse rather than guess.
      if (previousWasGlobstar) throw new GlobSyntaxError(glob, "'**/**' is redundant; write '**'");
      if (segments.length === 1) out += '[^/]+(?:/[^/]+)*';
      else if (i === 0) out += '(?:[^/]+/)*';
      else out += '(?:/[^/]+)*';
      previousWasGlobstar = true;
      continue;
    }
    if (segment.includes('**')) throw new GlobSyntaxError(glob, "'**' must be a whole path segment");
    // A segment that is only '*' still needs one character: names have no empty segments.
    const part = segment === '*' ? '[^/]+' : segment.split('*').map(escapeRegExp).join('[^/]*');
    // After a leading '**/' the separator is already in the globstar's group.
    out += i === 0 || (i === 1 && previousWasGlobstar) ? part : `/${part}`;
    previousWasGlobstar = false;
  }
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.\\^$+?()[\]{}|]/g, '\\$&');
}
