// Azure Container Registry's AAD flow, its first half (Azure/acr docs/AAD-OAuth.md): an Azure AD
// access token is exchanged at the registry's `POST /oauth2/exchange` (a form: grant_type=
// access_token, service, tenant, access_token) for an ACR refresh token, which then buys access
// tokens per scope with the OAuth2 refresh_token grant at the realm (hop-auth.ts). One exchange
// serves every scope: the refresh token is kept per (realm origin, service) until shortly before
// the exp in its JWT payload (read, not verified: the registry checks it, wharf only schedules)
// or a fixed lifetime for one that is no JWT, or until the realm rejects it (forget()).
// An exchange the registry rejects: the token source is told (its file is read again) and the
// exchange repeated once if that gave another token; then the client hears "denied".
// The caller decides that the realm may have the AAD token (the realm rules of hop-auth.ts):
// the exchange goes to the realm's own origin only.
import { LRUCache } from 'lru-cache';
import { UpstreamDeniedError, UpstreamProtocolError } from '../errors.ts';
import type { CredentialSource, Credentials } from './credential-source.ts';
import { BodyTooLargeError, readBounded } from './read-body.ts';
import { toUpstreamFailure, UpstreamFailure } from './upstream-failure.ts';
import type { HopDispatch } from './upstream-transport.ts';
import { jwtExpiry } from './jwt-expiry.ts';

const MAX_EXCHANGE_RESPONSE_BYTES = 64 * 1024;
/** ACR's refresh tokens live about 3 h; one whose lifetime cannot be read is kept for less. */
const UNREADABLE_LIFETIME_MS = 60 * 60_000;
/** An exp further out than this is not believed: the token is exchanged again after it anyway. */
const MAX_HOLD_MS = 24 * 60 * 60_000;
/** Exchange a little early so that a refresh token never expires between use and answer. */
const RENEW_MARGIN_MS = 60_000;
const MAX_HELD = 16;

export interface AcrRefreshTokensOptions {
  readonly upstream: string;
  /** Gives the AAD access token (credentials with aadAccessToken); told when the exchange rejects it. */
  readonly source: CredentialSource;
  readonly tenant: string | undefined;
  readonly userAgent: string;
  /** Whole-response deadline of an exchange (as for token requests). */
  readonly timeoutMs: number;
  /** Throws when a URL may not be dialled (the dial policy's literal check). */
  readonly checkUrl: (url: URL) => void;
}

export class AcrRefreshTokens {
  readonly #options: AcrRefreshTokensOptions;
  readonly #held = new LRUCache<string, { readonly token: string; readonly until: number }>({ max: MAX_HELD });
  /** One exchange per registry at a time: a pull asking for several scopes at once exchanges once. */
  readonly #pending = new Map<string, Promise<string>>();

  constructor(options: AcrRefreshTokensOptions) {
    this.#options = options;
  }

  /** The refresh token held for realm's registry, else one exchanged now; UpstreamDeniedError when the AAD token is refused. */
  async get(realm: URL, service: string | undefined, dispatch: HopDispatch): Promise<string> {
    const id = heldId(realm, service);
    const held = this.#held.get(id);
    if (held && Date.now() < held.until) return held.token;
    const pending = this.#pending.get(id);
    if (pending) return pending;
    const exchanging = this.#exchange(realm, service, dispatch)
      .then((token) => {
        const until = heldUntil(token, Date.now());
        if (until > Date.now()) this.#held.set(id, { token, until });
        return token;
      })
      .finally(() => this.#pending.delete(id));
    this.#pending.set(id, exchanging);
    return exchanging;
  }

  /** The realm rejected this refresh token: the next get() exchanges again. */
  forget(realm: URL, service: string | undefined, token: string): void {
    const id = heldId(realm, service);
    if (this.#held.get(id)?.token === token) this.#held.delete(id);
  }

  async #exchange(realm: URL, service: string | undefined, dispatch: HopDispatch): Promise<string> {
    const { source, upstream } = this.#options;
    const aad = await aadCredentials(source, upstream);
    let res = await this.#post(realm, service, aad.secret, dispatch);
    if (rejected(res.statusCode)) {
      await res.body.dump();
      source.invalidate(aad);
      const again = await aadCredentials(source, upstream);
      // The same token again would be refused again: say so now rather than ask twice.
      if (again.secret === aad.secret) throw new UpstreamDeniedError(upstream, res.statusCode);
      res = await this.#post(realm, service, again.secret, dispatch);
    }
    if (rejected(res.statusCode)) {
      await res.body.dump();
      throw new UpstreamDeniedError(upstream, res.statusCode);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new UpstreamFailure(upstream, 'auth-server', `token exchange answered HTTP ${res.statusCode}`);
    }
    const text = await readBounded(res.body, MAX_EXCHANGE_RESPONSE_BYTES).then(
      (body) => body.toString('utf8'),
      (err: unknown) => {
        if (err instanceof BodyTooLargeError) throw new UpstreamProtocolError(upstream, `token exchange response: ${err.message}`);
        throw toUpstreamFailure(upstream, err) ?? err;
      },
    );
    return parseExchangeResponse(upstream, text);
  }

  #post(realm: URL, service: string | undefined, accessToken: string, dispatch: HopDispatch) {
    const { tenant, userAgent, timeoutMs, checkUrl, upstream } = this.#options;
    // ACR serves the exchange beside its token realm: <registry>/oauth2/exchange next to /oauth2/token.
    const url = new URL('/oauth2/exchange', realm.origin);
    try {
      checkUrl(url);
    } catch (err) {
      throw new UpstreamProtocolError(upstream, (err as Error).message);
    }
    const form = new URLSearchParams({ grant_type: 'access_token' });
    if (service !== undefined) form.set('service', service);
    if (tenant !== undefined) form.set('tenant', tenant);
    form.set('access_token', accessToken);
    return dispatch({
      method: 'POST',
      url,
      headers: { 'user-agent': userAgent, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      signal: AbortSignal.timeout(timeoutMs),
    });
  }
}

async function aadCredentials(source: CredentialSource, upstream: string): Promise<Credentials> {
  const credentials = await source.get();
  // The loader checked the file at start and the source keeps what it read: this is a lost file.
  if (!credentials?.aadAccessToken) throw new UpstreamFailure(upstream, 'auth-server', 'no Azure AD access token to exchange (aad.accessTokenFile unreadable)');
  return credentials;
}

function rejected(status: number): boolean {
  return status === 401 || status === 403;
}

function heldId(realm: URL, service: string | undefined): string {
  return `${realm.origin}\n${service ?? ''}`;
}

/** Until when a refresh token is used: its JWT exp less a margin, capped; a fixed lifetime when unreadable. */
export function heldUntil(token: string, now: number): number {
  const exp = jwtExpiry(token);
  if (exp === undefined) return now + UNREADABLE_LIFETIME_MS;
  return Math.min(exp * 1000 - RENEW_MARGIN_MS, now + MAX_HOLD_MS);
}

function parseExchangeResponse(upstream: string, text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UpstreamProtocolError(upstream, 'token exchange sent invalid JSON');
  }
  const token = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>).refresh_token : undefined;
  if (typeof token !== 'string' || token === '') throw new UpstreamProtocolError(upstream, 'token exchange sent no refresh_token');
  return token;
}
