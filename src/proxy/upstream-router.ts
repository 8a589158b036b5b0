// Chooses the upstream for a request: ?ns=<registry>, else a first path segment naming a
// configured upstream (host-in-path), else the default upstream. Only configured upstreams can
// ever be chosen: ns is a key into the config, never a host to dial.
import { NameUnknownError } from '../errors.ts';
import { assertRepositoryName } from '../oci/grammar.ts';

/** A configured upstream as routing and the cache see it: its name and naming rules. */
export interface ConfiguredUpstream {
  readonly name: string;
  /** Single-segment repositories get library/ (Docker Hub official images). */
  readonly libraryPrefix: boolean;
  /** Serve only the cache; never send this upstream a request. */
  readonly offline: boolean;
}

/** What routing needs of an upstream: its name and naming rules. */
type Routable = Pick<ConfiguredUpstream, 'name' | 'libraryPrefix'>;

export interface Route<U extends Routable> {
  readonly upstream: U;
  /** Repository as the upstream knows it, e.g. library/alpine. */
  readonly repository: string;
  /** Set when the client named the registry with ?ns=, to be echoed as OCI-Namespace. */
  readonly namespace: string | undefined;
}

export class UpstreamRouter<U extends Routable> {
  readonly #byName: ReadonlyMap<string, U>;
  readonly #default: U | undefined;

  constructor(upstreams: readonly U[], defaultName: string | undefined) {
    this.#byName = new Map(upstreams.map((u) => [u.name, u]));
    this.#default = defaultName === undefined ? undefined : this.#byName.get(defaultName);
  }

  get upstreams(): readonly U[] {
    return [...this.#byName.values()];
  }

  get(name: string): U | undefined {
    return this.#byName.get(name);
  }

  route(name: string, ns: string | undefined): Route<U> {
    const slash = name.indexOf('/');
    const first = slash === -1 ? undefined : name.slice(0, slash);
    let upstream: U | undefined;
    let repository = name;
    if (ns !== undefined && ns !== '') {
      upstream = this.#byName.get(ns.toLowerCase());
      if (!upstream) throw new NameUnknownError(name, `registry ${ns} is not configured in wharf`);
      if (first === upstream.name) repository = name.slice(slash + 1);
    } else if (first !== undefined && this.#byName.has(first)) {
      upstream = this.#byName.get(first)!;
      repository = name.slice(slash + 1);
    } else {
      upstream = this.#default;
      if (!upstream) throw new NameUnknownError(name, 'no default upstream is configured; name the registry in the path or with ?ns=');
    }
    assertRepositoryName(repository);
    if (upstream.libraryPrefix && !repository.includes('/')) repository = `library/${repository}`;
    return { upstream, repository, namespace: ns === undefined || ns === '' ? undefined : upstream.name };
  }
}

/** The upstream marked default, else the only one when there is just one. */
export function defaultUpstreamName(upstreams: ReadonlyArray<{ readonly name: string; readonly default: boolean }>): string | undefined {
  const marked = upstreams.find((u) => u.default);
  if (marked) return marked.name;
  return upstreams.length === 1 ? upstreams[0]!.name : undefined;
}

/** The router over the configured upstreams, for roles that never dial them (hit threads, commands). */
export function routerFromConfig(config: {
  readonly offline: boolean;
  readonly upstreams: ReadonlyArray<{ readonly name: string; readonly default: boolean; readonly libraryPrefix: boolean }>;
}): UpstreamRouter<ConfiguredUpstream> {
  const upstreams = config.upstreams.map((u) => ({ name: u.name, libraryPrefix: u.libraryPrefix, offline: config.offline }));
  return new UpstreamRouter(upstreams, defaultUpstreamName(config.upstreams));
}
