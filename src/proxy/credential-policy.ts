// Where an upstream's configured credentials may go. A challenge belongs to the host that sent
// it, and any host on a redirect's path (a CDN) can send one naming any realm; so credentials
// go only to the upstream's own origin (Basic) and to token realms the upstream's own side
// names: its own host, hosts of the same registrable domain (auth.docker.io for registry-1.docker.io,
// gitlab.com for registry.gitlab.com) or hosts the operator listed (authRealmHosts). Everyone
// else gets anonymous token requests at most. An http:// realm for an https:// upstream is
// refused: it would send credentials, or hand out tokens, in clear text.
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { bareHost } from './dial-policy.ts';

// The Public Suffix List (tldts) is required, not imported: imported from ESM its 220 KB source
// is held twice, and required only when a host name needs it, it costs nothing (~2.5 MB of RSS)
// where every upstream is an IP address.
const requireCjs = createRequire(import.meta.url);

export class CredentialPolicy {
  readonly #upstream: URL;
  readonly #domain: string | null;
  readonly #listed: ReadonlySet<string>;

  constructor(upstreamUrl: string, authRealmHosts: readonly string[]) {
    this.#upstream = new URL(upstreamUrl);
    this.#domain = registrableDomain(this.#upstream.hostname);
    this.#listed = new Set(authRealmHosts.map((h) => h.toLowerCase()));
  }

  /** The upstream itself: the one origin that gets Basic credentials. */
  isOwnOrigin(url: URL): boolean {
    return url.origin === this.#upstream.origin;
  }

  /** A realm wharf may ask for a token at all (with or without credentials). */
  realmUsable(realm: URL): boolean {
    if (realm.protocol === 'https:') return true;
    return realm.protocol === 'http:' && this.#upstream.protocol === 'http:';
  }

  /**
   * Whether a token fetched from realm for a challenge sent by hop may use the credentials:
   * both must be on the upstream's side. (A token so fetched goes only back to that hop.)
   */
  mayUseCredentials(hop: URL, realm: URL): boolean {
    return this.#trusted(hop) && this.#trusted(realm) && this.realmUsable(realm);
  }

  #trusted(url: URL): boolean {
    if (this.isOwnOrigin(url)) return true;
    if (this.#listed.has(url.host.toLowerCase()) || this.#listed.has(url.hostname.toLowerCase())) return true;
    if (this.#upstream.protocol === 'https:' && url.protocol !== 'https:') return false;
    // The upstream's own host on another port (a token server beside the registry) is its own side.
    if (url.hostname === this.#upstream.hostname) return true;
    return this.#domain !== null && registrableDomain(url.hostname) === this.#domain;
  }
}

/** eTLD+1 by the Public Suffix List (private suffixes included, so tenants stay apart); none for IPs. */
function registrableDomain(hostname: string): string | null {
  const host = bareHost(hostname);
  if (isIP(host)) return null;
  const { getDomain } = requireCjs('tldts') as typeof import('tldts');
  return getDomain(host, { allowPrivateDomains: true });
}
