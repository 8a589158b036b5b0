// Which repositories of one upstream may enter the cache at all (Harbor's proxy cache filter):
// checked before the upstream is dialled, whoever asks. Globs as in repository-glob.ts, on the
// repository name within the upstream as routed (`library/alpine` for Docker Hub's `alpine`).
// Deny wins over allow; with no allow list, everything not denied is admitted.
import { compileGlobs, type RepositoryGlob } from './repository-glob.ts';

export interface ProxyFilterOptions {
  /** When present, only repositories matching one of these are admitted. */
  readonly allow?: readonly string[];
  /** Repositories never admitted, even when allowed. */
  readonly deny?: readonly string[];
}

export class ProxyFilter {
  readonly #allow: RepositoryGlob | undefined;
  readonly #deny: RepositoryGlob | undefined;

  constructor(options: ProxyFilterOptions) {
    // An empty list is refused by compileGlobs: `allow: []` would admit nothing, surely a mistake.
    this.#allow = options.allow === undefined ? undefined : compileGlobs(options.allow);
    this.#deny = options.deny === undefined ? undefined : compileGlobs(options.deny);
  }

  admits(repository: string): boolean {
    if (this.#deny?.matches(repository)) return false;
    return this.#allow === undefined || this.#allow.matches(repository);
  }
}
