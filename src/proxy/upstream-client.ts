// HTTP to one configured upstream registry: keep-alive pools (undici Agent), explicit deadlines,
// the registry auth dance and redirects. Auth is per hop: each host's challenge is remembered
// for that host and answered for the repository of that hop's path (registry.k8s.io redirects
// to another registry under another path); credentials go only where CredentialPolicy allows,
// and redirects and realms only to addresses DialPolicy allows. It knows nothing about caching.
import { Agent, type Dispatcher } from 'undici';
import type { Config } from '../config/load-config.ts';
import type { IncomingHttpHeaders } from 'node:http';
import { UpstreamDeniedError, UpstreamProtocolError } from '../errors.ts';
import { parseAuthChallenge, type AuthChallenge } from './auth-challenge.ts';
import { DEFAULT_TOKEN_LIFETIME_SECONDS, TokenCache, type IssuedToken, type TokenKey } from './token-cache.ts';
import { toUpstreamFailure, UpstreamFailure } from './upstream-failure.ts';
import { CredentialPolicy } from './credential-policy.ts';
import { DialPolicy, RefusedAddressError } from './dial-policy.ts';
import { LRUCache } from 'lru-cache';
import { BodyTooLargeError, readBounded } from './read-body.ts';

/**
 * What the client takes from an upstream's configuration (load-config.ts): where it is, its
 * credentials, and the hosts its redirects (redirectHosts) and token realms (authRealmHosts)
 * may lead to beyond the defaults.
 */
export type UpstreamTarget = Pick<Config['upstreams'][number], 'name' | 'url' | 'username' | 'password' | 'redirectHosts' | 'authRealmHosts'>;

export interface UpstreamTimeouts {
  /** TCP (and TLS) connection setup. */
  readonly connectMs: number;
  /** From sending the request to the end of the response headers. */
  readonly headersMs: number;
  /** Longest silence between two body chunks. */
  readonly bodyIdleMs: number;
  /** Whole-response deadline (request to last byte) for small bodies: manifests, tag pages, tokens. */
  readonly manifestTotalMs: number;
  /** Slowest blob body tolerated, measured over blobRateWindowMs; 0: no minimum. */
  readonly blobMinBytesPerSecond: number;
  readonly blobRateWindowMs: number;
}

export interface UpstreamRequest {
  readonly method: 'GET' | 'HEAD';
  /** Path and query on the upstream, e.g. /v2/library/alpine/manifests/3.20 */
  readonly path: string;
  /** The repository the request is about: it names the token scope. */
  readonly repository?: string | undefined;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal | undefined;
}

export type UpstreamBody = Dispatcher.ResponseData['body'];

export interface UpstreamResponse {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  /** Must be consumed, dumped or destroyed by the caller, or the connection is not reused. */
  readonly body: UpstreamBody;
  /** 401 even with a fresh token: registries such as Docker Hub answer so for unknown repositories. */
  readonly authRejected: boolean;
}

const MAX_REDIRECTS = 5;
const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REMEMBERED_ORIGINS = 64;

export class UpstreamClient {
  readonly name: string;
  readonly baseUrl: string;
  readonly #origin: string;
  readonly #basePath: string;
  readonly #basicAuth: string | undefined;
  readonly #agent: Agent;
  readonly #tokens = new TokenCache();
  readonly #userAgent: string;
  readonly #credentials: CredentialPolicy;
  readonly #dial: DialPolicy;
  readonly #manifestTotalMs: number;
  /** The last challenge of each origin (the upstream, its CDNs): lets requests authenticate up front. */
  readonly #challenges = new LRUCache<string, AuthChallenge>({ max: MAX_REMEMBERED_ORIGINS });

  constructor(options: { upstream: UpstreamTarget; timeouts: UpstreamTimeouts; userAgent?: string }) {
    const { upstream, timeouts } = options;
    const base = new URL(upstream.url);
    this.name = upstream.name;
    this.baseUrl = upstream.url;
    this.#origin = base.origin;
    this.#basePath = base.pathname.replace(/\/+$/, '');
    this.#userAgent = options.userAgent ?? 'wharf';
    this.#basicAuth =
      upstream.username !== undefined
        ? `Basic ${Buffer.from(`${upstream.username}:${upstream.password ?? ''}`).toString('base64')}`
        : undefined;
    this.#credentials = new CredentialPolicy(upstream.url, upstream.authRealmHosts);
    this.#dial = new DialPolicy(base.hostname, upstream.redirectHosts);
    this.#manifestTotalMs = timeouts.manifestTotalMs;
    this.#agent = new Agent({
      connect: { timeout: timeouts.connectMs, lookup: this.#dial.lookup },
      headersTimeout: timeouts.headersMs,
      bodyTimeout: timeouts.bodyIdleMs,
    });
  }

  /** One request, following redirects; each hop authenticates for itself. */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    let url = new URL(this.#basePath + req.path, this.#origin);
    for (let hop = 0; ; hop++) {
      const res = await this.#sendHop(req, url, hop === 0 ? req.repository : repositoryOfPath(url.pathname));
      const location = res.headers.location;
      if (!REDIRECT_STATUSES.has(res.statusCode) || typeof location !== 'string') return res;
      await res.body.dump();
      if (hop === MAX_REDIRECTS) throw new UpstreamProtocolError(this.name, `more than ${MAX_REDIRECTS} redirects`);
      url = this.#redirectTarget(location, url);
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  #redirectTarget(location: string, from: URL): URL {
    let url: URL;
    try {
      url = new URL(location, from);
    } catch {
      throw new UpstreamProtocolError(this.name, 'redirect to an invalid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UpstreamProtocolError(this.name, `redirect to ${url.protocol} URL`);
    if (url.username || url.password) throw new UpstreamProtocolError(this.name, 'redirect to a URL with credentials');
    this.#checkLiteral(url);
    return url;
  }

  #checkLiteral(url: URL): void {
    try {
      this.#dial.checkLiteral(url);
    } catch (err) {
      throw new UpstreamProtocolError(this.name, (err as Error).message);
    }
  }

  /** One hop: authenticated up front from what this origin asked before, retried once on a 401. */
  async #sendHop(req: UpstreamRequest, url: URL, repository: string | undefined): Promise<UpstreamResponse> {
    const scope = repository !== undefined ? `repository:${repository}:pull` : undefined;
    const sent = await this.#authorizationFor(url, this.#challenges.get(url.origin), scope);
    const first = await this.#dispatch({ method: req.method, url, headers: this.#headers(req, sent), signal: req.signal });
    if (first.statusCode !== 401) return { ...first, authRejected: false };

    const challenge = parseAuthChallenge(first.headers['www-authenticate']);
    const retry = challenge && (await this.#retryAuthorization(url, challenge, scope, sent));
    if (!retry) return { ...first, authRejected: false };
    this.#challenges.set(url.origin, challenge);
    await first.body.dump();
    const second = await this.#dispatch({ method: req.method, url, headers: this.#headers(req, retry), signal: req.signal });
    return { ...second, authRejected: second.statusCode === 401 };
  }

  #headers(req: UpstreamRequest, authorization: string | undefined): Record<string, string> {
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...req.headers };
    if (authorization) headers.authorization = authorization;
    return headers;
  }

  /** The Authorization to send to hop before any challenge of this request, from what we learned. */
  async #authorizationFor(hop: URL, challenge: AuthChallenge | undefined, scope: string | undefined): Promise<string | undefined> {
    if (challenge?.scheme === 'bearer') return this.#bearer(hop, challenge, scope);
    if (challenge?.scheme === 'basic') return this.#basicFor(hop);
    return undefined;
  }

  /** What to retry a 401 with, or undefined when a retry cannot help. */
  async #retryAuthorization(hop: URL, challenge: AuthChallenge, scope: string | undefined, sent: string | undefined): Promise<string | undefined> {
    if (challenge.scheme === 'basic') {
      const basic = this.#basicFor(hop);
      return basic !== undefined && sent !== basic ? basic : undefined;
    }
    const key = this.#tokenKey(hop, challenge, challenge.params.scope ?? scope);
    if (!key) return undefined;
    if (sent?.startsWith('Bearer ')) this.#tokens.invalidate(key, sent.slice('Bearer '.length));
    return `Bearer ${await this.#tokens.get(key, () => this.#fetchToken(key))}`;
  }

  /** Basic credentials go to the upstream's own origin only. */
  #basicFor(hop: URL): string | undefined {
    return this.#credentials.isOwnOrigin(hop) ? this.#basicAuth : undefined;
  }

  async #bearer(hop: URL, challenge: AuthChallenge, scope: string | undefined): Promise<string | undefined> {
    const key = this.#tokenKey(hop, challenge, scope);
    return key && `Bearer ${await this.#tokens.get(key, () => this.#fetchToken(key))}`;
  }

  #tokenKey(hop: URL, challenge: AuthChallenge, scope: string | undefined): TokenKey | undefined {
    const realm = parseRealm(challenge.params.realm);
    if (!realm || !this.#credentials.realmUsable(realm)) return undefined;
    const credentialed = this.#basicAuth !== undefined && this.#credentials.mayUseCredentials(hop, realm);
    return { realm: realm.href, service: challenge.params.service, scope, credentialed };
  }

  /** GET realm?service=&scope= (Docker token spec), with our Basic credentials where allowed. */
  async #fetchToken(key: TokenKey): Promise<IssuedToken> {
    const url = new URL(key.realm);
    if (key.service !== undefined) url.searchParams.set('service', key.service);
    if (key.scope !== undefined) url.searchParams.set('scope', key.scope);
    this.#checkLiteral(url);
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, accept: 'application/json' };
    if (key.credentialed && this.#basicAuth) headers.authorization = this.#basicAuth;
    const res = await this.#dispatch({ method: 'GET', url, headers, signal: AbortSignal.timeout(this.#manifestTotalMs) });
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      throw new UpstreamDeniedError(this.name, res.statusCode);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new UpstreamFailure(this.name, 'auth-server', `token endpoint answered HTTP ${res.statusCode}`);
    }
    const text = await readBounded(res.body, MAX_TOKEN_RESPONSE_BYTES).then(
      (body) => body.toString('utf8'),
      (err: unknown) => {
        if (err instanceof BodyTooLargeError) throw new UpstreamProtocolError(this.name, `token response: ${err.message}`);
        throw toUpstreamFailure(this.name, err) ?? err;
      },
    );
    return parseTokenResponse(this.name, text);
  }

  async #dispatch(opts: { method: 'GET' | 'HEAD'; url: URL; headers: Record<string, string>; signal?: AbortSignal | undefined }) {
    const send = () =>
      this.#agent.request({
        origin: opts.url.origin,
        path: opts.url.pathname + opts.url.search,
        method: opts.method,
        headers: opts.headers,
        signal: opts.signal,
        // undici closes the connection after every HEAD by default (for servers that send a
        // body anyway); registries do not, and a tag revalidation per new TLS connection costs.
        reset: false,
      });
    try {
      try {
        return await send();
      } catch (err) {
        // A kept-alive connection the server closed just as we reused it: GET and HEAD are
        // idempotent, so try once more on a fresh connection (as Go's http.Transport does).
        if (!isStaleConnectionError(err)) throw err;
        return await send();
      }
    } catch (err) {
      const refused = err instanceof RefusedAddressError ? err : (err as { cause?: unknown } | null)?.cause;
      // Not an outage: the upstream pointed somewhere it may not lead.
      if (refused instanceof RefusedAddressError) throw new UpstreamProtocolError(this.name, refused.message);
      throw toUpstreamFailure(this.name, err) ?? err;
    }
  }
}

/** The repository a registry API path names (/v2/<name>/manifests|blobs|tags|referrers/...). */
function repositoryOfPath(pathname: string): string | undefined {
  return /^(?:\/[^/]+)*?\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)\//.exec(pathname)?.[1];
}

function parseRealm(realm: string | undefined): URL | undefined {
  if (!realm) return undefined;
  try {
    return new URL(realm);
  } catch {
    return undefined;
  }
}

function isStaleConnectionError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET';
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
