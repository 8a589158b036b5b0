// Bearer tokens per (realm, service, scope), reused until shortly before they expire. One fetch
// per key at a time: a burst of requests for a new repository asks the auth server once.
import { LRUCache } from 'lru-cache';
import { jwtExpiry } from './jwt-expiry.ts';

export interface TokenKey {
  readonly realm: string;
  readonly service: string | undefined;
  readonly scope: string | undefined;
  /** Fetched with the upstream's credentials (an anonymous token for the same scope is another). */
  readonly credentialed: boolean;
}

export interface IssuedToken {
  readonly token: string;
  /** Lifetime in seconds as the auth server stated it. */
  readonly expiresInSeconds: number;
}

/** The Docker token spec: a token without expires_in lives 60 s. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 60;
/** A lifetime read off a token's own exp is believed up to this. */
const MAX_JWT_LIFETIME_SECONDS = 3600;

/**
 * How long a token lives: expires_in when the answer gives it; else the exp of a JWT token
 * (ACR answers without expires_in but its JWTs say when they expire), not verified, only used
 * to schedule the next fetch, capped; else the spec's 60 s.
 */
export function tokenLifetimeSeconds(expiresIn: unknown, token: string, nowMs: number): number {
  if (typeof expiresIn === 'number' && expiresIn > 0) return expiresIn;
  const at = jwtExpiry(token);
  if (at === undefined) return DEFAULT_TOKEN_LIFETIME_SECONDS;
  return Math.max(1, Math.min(MAX_JWT_LIFETIME_SECONDS, Math.floor(at - nowMs / 1000)));
}
// Renew a little early so a token never expires between our check and the upstream's.
const RENEW_MARGIN_MS = 10_000;
const MAX_TOKENS = 10_000;

export class TokenCache {
  readonly #tokens = new LRUCache<string, string>({ max: MAX_TOKENS, ttlAutopurge: false });
  readonly #pending = new Map<string, Promise<string>>();

  /** A cached token, else the result of fetch() shared by every concurrent caller. */
  async get(key: TokenKey, fetch: () => Promise<IssuedToken>): Promise<string> {
    const id = keyId(key);
    const cached = this.#tokens.get(id);
    if (cached !== undefined) return cached;
    const pending = this.#pending.get(id);
    if (pending) return pending;
    const fetching = fetch()
      .then((issued) => {
        const ttl = Math.max(1, issued.expiresInSeconds) * 1000 - RENEW_MARGIN_MS;
        if (ttl > 0) this.#tokens.set(id, issued.token, { ttl });
        return issued.token;
      })
      .finally(() => this.#pending.delete(id));
    this.#pending.set(id, fetching);
    return fetching;
  }

  /** Forgets a token the upstream rejected, so the next get() fetches a fresh one. */
  invalidate(key: TokenKey, token: string): void {
    const id = keyId(key);
    if (this.#tokens.get(id) === token) this.#tokens.delete(id);
  }

  /** Forgets every token fetched with credentials: the credentials were rejected or replaced. */
  forgetCredentialed(): void {
    for (const id of [...this.#tokens.keys()]) if (id.endsWith('\n1')) this.#tokens.delete(id);
  }
}

function keyId(key: TokenKey): string {
  return `${key.realm}\n${key.service ?? ''}\n${key.scope ?? ''}\n${key.credentialed ? 1 : 0}`;
}
