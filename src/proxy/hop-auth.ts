// The auth link of an upstream's chain, wrapped around each hop (the upstream, a CDN it
// redirects to, another registry): the registry auth dance for that host. Its challenge is
// remembered per origin and answered for the repository of that hop's path, Bearer tokens are
// cached per (realm, service, scope, with or without credentials), and the configured
// credentials go only where CredentialPolicy allows.
import { LRUCache } from 'lru-cache';
import { UpstreamDeniedError, UpstreamProtocolError } from '../errors.ts';
import { parseAuthChallenge, type AuthChallenge } from './auth-challenge.ts';
import { CredentialPolicy } from './credential-policy.ts';
import { BodyTooLargeError, readBounded } from './read-body.ts';
import { DEFAULT_TOKEN_LIFETIME_SECONDS, TokenCache, type IssuedToken, type TokenKey } from './token-cache.ts';
import { toUpstreamFailure, UpstreamFailure } from './upstream-failure.ts';
import type { UpstreamResponse, UpstreamTarget } from './upstream-client.ts';
import type { Hop, HopDispatch } from './upstream-transport.ts';

const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
const MAX_REMEMBERED_ORIGINS = 64;

export interface HopAuthOptions {
  readonly target: UpstreamTarget;
  readonly userAgent: string;
  /** Whole-response deadline of a token request. */
  readonly tokenTimeoutMs: number;
  /** Told once per realm when the credentials are withheld from it (for a log line). */
  readonly onWithheld?: (realm: string, why: string) => void;
  /** Throws when a realm's URL may not be dialled (an IP literal the dial policy refuses). */
  readonly checkUrl: (url: URL) => void;
}

export class HopAuth {
  readonly #name: string;
  readonly #basicAuth: string | undefined;
  readonly #credentials: CredentialPolicy;
  readonly #tokens = new TokenCache();
  readonly #options: HopAuthOptions;
  /** The last challenge of each origin (the upstream, its CDNs): lets requests authenticate up front. */
  readonly #challenges = new LRUCache<string, AuthChallenge>({ max: MAX_REMEMBERED_ORIGINS });
  /** Realms already reported as refused: one log line each, not one per request. */
  readonly #reported = new LRUCache<string, true>({ max: MAX_REMEMBERED_ORIGINS });

  constructor(options: HopAuthOptions) {
    const { target } = options;
    this.#options = options;
    this.#name = target.name;
    this.#basicAuth = target.username !== undefined ? `Basic ${Buffer.from(`${target.username}:${target.password ?? ''}`).toString('base64')}` : undefined;
    this.#credentials = new CredentialPolicy(target.url, target.authRealmHosts);
  }

  /** One hop: authenticated up front from what this origin asked before, retried once on a 401. */
  async send(dispatch: HopDispatch, hop: Hop, repository: string | undefined): Promise<UpstreamResponse> {
    const scope = repository !== undefined ? `repository:${repository}:pull` : undefined;
    const sent = await this.#authorizationFor(hop.url, this.#challenges.get(hop.url.origin), scope, dispatch);
    const first = await dispatch(withAuthorization(hop, sent));
    if (first.statusCode !== 401) return { ...first, authRejected: false };

    const challenge = parseAuthChallenge(first.headers['www-authenticate']);
    const retry = challenge && (await this.#retryAuthorization(hop.url, challenge, scope, sent, dispatch));
    if (!retry) return { ...first, authRejected: false };
    this.#challenges.set(hop.url.origin, challenge);
    await first.body.dump();
    const second = await dispatch(withAuthorization(hop, retry.authorization));
    return { ...second, authRejected: second.statusCode === 401 && retry.rejectionMeansUnknown };
  }

  /** The Authorization to send to hop before any challenge of this request, from what we learned. */
  async #authorizationFor(hop: URL, challenge: AuthChallenge | undefined, scope: string | undefined, dispatch: HopDispatch): Promise<string | undefined> {
    if (challenge?.scheme === 'bearer') {
      const key = this.#tokenKey(hop, challenge, scope);
      return key && `Bearer ${await this.#tokens.get(key, () => this.#fetchToken(key, dispatch))}`;
    }
    if (challenge?.scheme === 'basic') return this.#basicFor(hop);
    return undefined;
  }

  /**
   * What to retry a 401 with, or undefined when a retry cannot help; and whether a 401 to that
   * retry means "no such repository". Only a fresh Bearer token fetched with everything we have
   * does (Docker Hub hands out a token that covers nothing). A 401 to our Basic credentials
   * (Artifactory's `Basic realm="Artifactory Realm"`) says they are wrong, and one to a token
   * fetched without credentials we withheld (a realm outside the upstream's side) says they
   * were needed: the client must hear "denied", not "manifest unknown".
   */
  async #retryAuthorization(hop: URL, challenge: AuthChallenge, scope: string | undefined, sent: string | undefined, dispatch: HopDispatch): Promise<{ authorization: string; rejectionMeansUnknown: boolean } | undefined> {
    if (challenge.scheme === 'basic') {
      const basic = this.#basicFor(hop);
      return basic !== undefined && sent !== basic ? { authorization: basic, rejectionMeansUnknown: false } : undefined;
    }
    const key = this.#tokenKey(hop, challenge, challenge.params.scope ?? scope);
    if (!key) return undefined;
    if (sent?.startsWith('Bearer ')) this.#tokens.invalidate(key, sent.slice('Bearer '.length));
    const token = await this.#tokens.get(key, () => this.#fetchToken(key, dispatch));
    return { authorization: `Bearer ${token}`, rejectionMeansUnknown: key.credentialed || this.#basicAuth === undefined };
  }

  /** Basic credentials go to the upstream's own origin only. */
  #basicFor(hop: URL): string | undefined {
    return this.#credentials.isOwnOrigin(hop) ? this.#basicAuth : undefined;
  }

  #tokenKey(hop: URL, challenge: AuthChallenge, scope: string | undefined): TokenKey | undefined {
    const realm = parseRealm(challenge.params.realm);
    if (!realm) return undefined;
    if (!this.#credentials.realmUsable(realm)) {
      this.#withheld(realm, 'an http:// token realm for an https:// upstream is not used');
      return undefined;
    }
    const credentialed = this.#basicAuth !== undefined && this.#credentials.mayUseCredentials(hop, realm);
    if (this.#basicAuth !== undefined && !credentialed) this.#withheld(realm, 'the challenge points outside the upstream\'s side; credentials withheld (list the host in authRealmHosts to allow it)');
    return { realm: realm.href, service: challenge.params.service, scope, credentialed };
  }

  #withheld(realm: URL, why: string): void {
    if (this.#reported.has(realm.origin)) return;
    this.#reported.set(realm.origin, true);
    this.#options.onWithheld?.(realm.origin, why);
  }

  /** GET realm?service=&scope= (Docker token spec), with our Basic credentials where allowed. */
  async #fetchToken(key: TokenKey, dispatch: HopDispatch): Promise<IssuedToken> {
    const url = new URL(key.realm);
    if (key.service !== undefined) url.searchParams.set('service', key.service);
    if (key.scope !== undefined) url.searchParams.set('scope', key.scope);
    try {
      this.#options.checkUrl(url);
    } catch (err) {
      throw new UpstreamProtocolError(this.#name, (err as Error).message);
    }
    const headers: Record<string, string> = { 'user-agent': this.#options.userAgent, accept: 'application/json' };
    if (key.credentialed && this.#basicAuth) headers.authorization = this.#basicAuth;
    const res = await dispatch({ method: 'GET', url, headers, signal: AbortSignal.timeout(this.#options.tokenTimeoutMs) });
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      throw new UpstreamDeniedError(this.#name, res.statusCode);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new UpstreamFailure(this.#name, 'auth-server', `token endpoint answered HTTP ${res.statusCode}`);
    }
    const text = await readBounded(res.body, MAX_TOKEN_RESPONSE_BYTES).then(
      (body) => body.toString('utf8'),
      (err: unknown) => {
        if (err instanceof BodyTooLargeError) throw new UpstreamProtocolError(this.#name, `token response: ${err.message}`);
        throw toUpstreamFailure(this.#name, err) ?? err;
      },
    );
    return parseTokenResponse(this.#name, text);
  }
}

function withAuthorization(hop: Hop, authorization: string | undefined): Hop {
  return authorization ? { ...hop, headers: { ...hop.headers, authorization } } : hop;
}

function parseRealm(realm: string | undefined): URL | undefined {
  if (!realm) return undefined;
  try {
    return new URL(realm);
  } catch {
    return undefined;
  }
}

function parseTokenResponse(upstream: string, text: string): IssuedToken {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UpstreamProtocolError(upstream, 'token endpoint sent invalid JSON');
  }
  const record = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const token = typeof record.token === 'string' && record.token ? record.token : record.access_token;
  if (typeof token !== 'string' || !token) throw new UpstreamProtocolError(upstream, 'token endpoint sent no token');
  const expiresIn = typeof record.expires_in === 'number' && record.expires_in > 0 ? record.expires_in : DEFAULT_TOKEN_LIFETIME_SECONDS;
  return { token, expiresInSeconds: expiresIn };
}
