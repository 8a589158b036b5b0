// What the manifest fast path learns from a request URL: the parsed path, the route and the
// names derived from them. All of it is a function of the URL and the config alone, and clients
// ask for the same few URLs over and over (every pull, every CI job polling its base image), so
// each URL is worked out once and kept; a request for a known URL then runs no regular expression
// and allocates nothing for it. The map is bounded: past its size it starts over, which costs the
// next requests one parse each and keeps memory flat whatever URLs clients try.
import type { ConfiguredUpstream, Route, UpstreamRouter } from '../proxy/upstream-router.ts';
import { parseRegistryPath } from './parse-registry-path.ts';
import { scopeName } from '../auth/access-gate.ts';

export const FAST_TARGETS_HELD = 4096;

export interface FastTarget {
  readonly route: Route<ConfiguredUpstream>;
  readonly reference: string;
  /** The scope name a token must carry for it (access-gate.ts scopeName()). */
  readonly scope: string;
  /** The pull count's key (top-repositories.ts). */
  readonly pulled: string;
}

export class FastTargets {
  readonly #router: UpstreamRouter<ConfiguredUpstream>;
  readonly #held = new Map<string, FastTarget>();

  constructor(router: UpstreamRouter<ConfiguredUpstream>) {
    this.#router = router;
  }

  /** The manifest this URL asks for, or undefined for anything else (and any URL the full handler must refuse). */
  of(url: string): FastTarget | undefined {
    const known = this.#held.get(url);
    if (known !== undefined) return known;
    const target = this.#workOut(url);
    if (target === undefined) return undefined;
    if (this.#held.size >= FAST_TARGETS_HELD) this.#held.clear();
    this.#held.set(url, target);
    return target;
  }

  #workOut(url: string): FastTarget | undefined {
    if (!url.startsWith('/v2/') || url.includes('%')) return undefined;
    const query = url.indexOf('?');
    const path = parseRegistryPath(query === -1 ? url : url.slice(0, query));
    if (path.kind !== 'manifest') return undefined;
    let ns: string | undefined;
    if (query !== -1) {
      const params = new URLSearchParams(url.slice(query + 1));
      if ([...params.keys()].some((k) => k !== 'ns')) return undefined;
      ns = params.get('ns') ?? undefined;
    }
    let route;
    try {
      route = this.#router.route(path.name, ns);
    } catch {
      return undefined; // the full handler answers bad names with the proper error
    }
    return { route, reference: path.reference, scope: scopeName(path.name, route), pulled: `${route.upstream.name}/${route.repository}` };
  }
}
