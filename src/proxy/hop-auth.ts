// The auth link of an upstream's chain, wrapped around each hop (the upstream, a CDN it
// redirects to, another registry): the registry auth dance for that host. Its challenge is
// remembered per origin and answered for the repository of that hop's path, Bearer tokens are
// cached per (realm, service, scope, with or without credentials), and the configured
// credentials go only where CredentialPolicy allows. The credentials come from a CredentialSource
// (credential-source.ts: config, a passwordFile read again on change, a credential helper), asked
// on each use; when the upstream rejects them the source is told and asked once more, and a
// request is retried with what it gives at most once: then the client hears "denied". An Azure
// AD access token (aad) is exchanged for an ACR refresh token first (acr-refresh-tokens.ts).
import { LRUCache } from 'lru-cache';
import { UpstreamDeniedError, UpstreamProtocolError } from '../errors.ts';
import { AcrRefreshTokens } from './acr-refresh-tokens.ts';
import { parseAuthChallenge, type AuthChallenge } from './auth-challenge.ts';
import { CredentialPolicy } from './credential-policy.ts';
import { CredentialHelperError, credentialSourceFor, IDENTITY_TOKEN_USERNAME, type CredentialSource, type Credentials } from './credential-source.ts';
import { BodyTooLargeError, readBounded } from './read-body.ts';
import { TokenCache, tokenLifetimeSeconds, type IssuedToken, type TokenKey } from './token-cache.ts';
import { toUpstreamFailure, UpstreamFailure } from './upstream-failure.ts';
import type { UpstreamResponse, UpstreamTarget } from './upstream-client.ts';
import type { Hop, HopAnswer, HopDispatch } from './upstream-transport.ts';

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
  /** Undefined: the upstream has no credentials configured (every request anonymous). */
  readonly #source: CredentialSource | undefined;
  readonly #credentials: CredentialPolicy;
  /** Defined for an aad upstream: the ACR refresh tokens its AAD access token was exchanged for. */
  readonly #acr: AcrRefreshTokens | undefined;
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
    this.#source = credentialSourceFor(target);
    this.#credentials = new CredentialPolicy(target.url, target.authRealmHosts);
    this.#acr =
      target.aad && this.#source
        ? new AcrRefreshTokens({ upstream: target.name, source: this.#source, tenant: target.aad.tenant, userAgent: options.userAgent, timeoutMs: options.tokenTimeoutMs, checkUrl: options.checkUrl })
        : undefined;
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
    // Basic credentials from a file or helper rejected: look again once and retry once with what changed.
    if (second.statusCode === 401 && retry.basic && !retry.refreshed && this.#source?.refreshable) {
      this.#source.invalidate(retry.basic);
      const again = await this.#basicFor(hop.url);
      if (again && again.authorization !== retry.authorization) {
        await second.body.dump();
        const third = await dispatch(withAuthorization(hop, again.authorization));
        return { ...third, authRejected: false };
      }
    }
    return { ...second, authRejected: second.statusCode === 401 && retry.rejectionMeansUnknown };
  }

  /** The Authorization to send to hop before any challenge of this request, from what we learned. */
  async #authorizationFor(hop: URL, challenge: AuthChallenge | undefined, scope: string | undefined, dispatch: HopDispatch): Promise<string | undefined> {
    if (challenge?.scheme === 'bearer') {
      const key = this.#tokenKey(hop, challenge, scope);
      return key && `Bearer ${await this.#tokens.get(key, () => this.#fetchToken(key, dispatch))}`;
    }
    if (challenge?.scheme === 'basic') return (await this.#basicFor(hop))?.authorization;
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
  async #retryAuthorization(
    hop: URL,
    challenge: AuthChallenge,
    scope: string | undefined,
    sent: string | undefined,
    dispatch: HopDispatch,
  ): Promise<{ authorization: string; rejectionMeansUnknown: boolean; basic?: Credentials; refreshed?: boolean } | undefined> {
    if (challenge.scheme === 'basic') {
      let basic = await this.#basicFor(hop);
      let refreshed = false;
      // The very credentials just rejected: the source may have others by now (a rotated file, a helper's new answer).
      if (basic && basic.authorization === sent && this.#source?.refreshable) {
        this.#source.invalidate(basic.credentials);
        basic = await this.#basicFor(hop);
        refreshed = true;
      }
      return basic !== undefined && sent !== basic.authorization ? { authorization: basic.authorization, rejectionMeansUnknown: false, basic: basic.credentials, refreshed } : undefined;
    }
    const key = this.#tokenKey(hop, challenge, challenge.params.scope ?? scope);
    if (!key) return undefined;
    if (sent?.startsWith('Bearer ')) this.#tokens.invalidate(key, sent.slice('Bearer '.length));
    const token = await this.#tokens.get(key, () => this.#fetchToken(key, dispatch));
    // A 401 to a token fetched with credentials (or with none configured) means "no such
    // repository"; one fetched without the credentials we lack (a helper that had none) means "denied".
    const hadCredentials = key.credentialed && (await this.#currentCredentials()) !== undefined;
    return { authorization: `Bearer ${token}`, rejectionMeansUnknown: hadCredentials || this.#source === undefined };
  }

  /** Basic credentials go to the upstream's own origin only (an identity or AAD token is no password). */
  async #basicFor(hop: URL): Promise<{ authorization: string; credentials: Credentials } | undefined> {
    if (!this.#source || !this.#credentials.isOwnOrigin(hop)) return undefined;
    const credentials = await this.#currentCredentials();
    if (!credentials || credentials.identityToken || credentials.aadAccessToken) return undefined;
    return { authorization: basicAuthorization(credentials), credentials };
  }

  /** What the source gives now; a helper that fails is the upstream's auth failing, for the client. */
  async #currentCredentials(): Promise<Credentials | undefined> {
    try {
      return await this.#source?.get();
    } catch (err) {
      if (err instanceof CredentialHelperError) throw new UpstreamFailure(this.#name, 'auth-server', err.message, { cause: err });
      throw err;
    }
  }

  #tokenKey(hop: URL, challenge: AuthChallenge, scope: string | undefined): TokenKey | undefined {
    const realm = parseRealm(challenge.params.realm);
    if (!realm) return undefined;
    if (!this.#credentials.realmUsable(realm)) {
      this.#withheld(realm, 'an http:// token realm for an https:// upstream is not used');
      return undefined;
    }
    const credentialed = this.#source !== undefined && this.#credentials.mayUseCredentials(hop, realm);
    if (this.#source !== undefined && !credentialed) this.#withheld(realm, 'the challenge points outside the upstream\'s side; credentials withheld (list the host in authRealmHosts to allow it)');
    return { realm: realm.href, service: challenge.params.service, scope, credentialed };
  }

  #withheld(realm: URL, why: string): void {
    if (this.#reported.has(realm.origin)) return;
    this.#reported.set(realm.origin, true);
    this.#options.onWithheld?.(realm.origin, why);
  }

  /**
   * A token for key: with credentials where allowed, GET realm?service=&scope= with Basic (the
   * Docker token spec), or for an identity token POST realm with the OAuth2 refresh_token grant
   * (for an AAD token: with the ACR refresh token it was exchanged for, #askAcrRealm).
   * Credentials the realm rejects: the source is told, asked again, and the realm asked once
   * more with what it gives (a rotated file, a helper's new answer); then "denied".
   */
  async #fetchToken(key: TokenKey, dispatch: HopDispatch): Promise<IssuedToken> {
    const credentials = key.credentialed ? await this.#currentCredentials() : undefined;
    if (credentials?.aadAccessToken && this.#acr) return this.#readToken(await this.#askAcrRealm(this.#acr, key, dispatch));
    let res = await this.#askRealm(key, credentials, dispatch);
    if ((res.statusCode === 401 || res.statusCode === 403) && credentials && this.#source?.refreshable) {
      await res.body.dump();
      this.#source.invalidate(credentials);
      this.#tokens.forgetCredentialed();
      res = await this.#askRealm(key, await this.#currentCredentials(), dispatch);
    }
    return this.#readToken(res);
  }

  /**
   * ACR with an AAD token: the refresh_token grant with the refresh token held for the realm's
   * registry (exchanged for when none is). One the realm rejects (revoked, expired early) is
   * forgotten and one more exchanged, once.
   */
  async #askAcrRealm(acr: AcrRefreshTokens, key: TokenKey, dispatch: HopDispatch) {
    const realm = new URL(key.realm);
    const refreshToken = await acr.get(realm, key.service, dispatch);
    const res = await this.#askRealm(key, identityToken(refreshToken), dispatch);
    if (res.statusCode !== 401 && res.statusCode !== 403) return res;
    await res.body.dump();
    acr.forget(realm, key.service, refreshToken);
    return this.#askRealm(key, identityToken(await acr.get(realm, key.service, dispatch)), dispatch);
  }

  /** The token in a realm's answer; 401/403 is "denied" for the client. */
  async #readToken(res: HopAnswer): Promise<IssuedToken> {
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

  #askRealm(key: TokenKey, credentials: Credentials | undefined, dispatch: HopDispatch) {
    const url = new URL(key.realm);
    const headers: Record<string, string> = { 'user-agent': this.#options.userAgent, accept: 'application/json' };
    let body: string | undefined;
    if (credentials?.identityToken) {
      // distribution's token spec, "OAuth2 token": refresh_token grant, form-encoded, answer in access_token.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credentials.secret, client_id: 'wharf' });
      if (key.service !== undefined) form.set('service', key.service);
      if (key.scope !== undefined) form.set('scope', key.scope);
      body = form.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      if (key.service !== undefined) url.searchParams.set('service', key.service);
      if (key.scope !== undefined) url.searchParams.set('scope', key.scope);
      if (credentials) headers.authorization = basicAuthorization(credentials);
    }
    try {
      this.#options.checkUrl(url);
    } catch (err) {
      throw new UpstreamProtocolError(this.#name, (err as Error).message);
    }
    return dispatch({ method: body === undefined ? 'GET' : 'POST', url, headers, body, signal: AbortSignal.timeout(this.#options.tokenTimeoutMs) });
  }
}

function identityToken(secret: string): Credentials {
  return { username: IDENTITY_TOKEN_USERNAME, secret, identityToken: true };
}

function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.secret}`).toString('base64')}`;
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
  return { token, expiresInSeconds: tokenLifetimeSeconds(record.expires_in, token, Date.now()) };
}
