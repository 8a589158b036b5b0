// HTTP to one configured upstream registry: keep-alive pools (undici Agent), explicit deadlines,
// the registry auth dance (Bearer tokens per scope, Basic from config) and redirects that never
// carry our credentials to another host. It knows nothing about caching.
import { Agent, type Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import { UpstreamDeniedError, UpstreamProtocolError } from '../errors.ts';
import { parseAuthChallenge, type AuthChallenge } from './auth-challenge.ts';
import { DEFAULT_TOKEN_LIFETIME_SECONDS, TokenCache, type IssuedToken, type TokenKey } from './token-cache.ts';
import { toUpstreamFailure, UpstreamFailure } from './upstream-failure.ts';

export interface UpstreamTarget {
  readonly name: string;
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

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

export class UpstreamClient {
  readonly name: string;
  readonly baseUrl: string;
  readonly #origin: string;
  readonly #basePath: string;
  readonly #basicAuth: string | undefined;
  readonly #agent: Agent;
  readonly #tokens = new TokenCache();
  readonly #userAgent: string;
  /** The upstream's last auth challenge: lets later requests authenticate up front. */
  #challenge: AuthChallenge | undefined;

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
    this.#agent = new Agent({
      connect: { timeout: timeouts.connectMs },
      headersTimeout: timeouts.headersMs,
      bodyTimeout: timeouts.bodyIdleMs,
    });
  }

  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const scope = req.repository !== undefined ? `repository:${req.repository}:pull` : undefined;
    const sent = await this.#authorizationFor(this.#challenge, scope);
    const first = await this.#send(req, sent);
    if (first.statusCode !== 401) return { ...first, authRejected: false };

    const challenge = parseAuthChallenge(first.headers['www-authenticate']);
    const retry = challenge && (await this.#retryAuthorization(challenge, scope, sent));
    if (!retry) return { ...first, authRejected: false };
    this.#challenge = challenge;
    await first.body.dump();
    const second = await this.#send(req, retry);
    return { ...second, authRejected: second.statusCode === 401 };
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /** The Authorization to send before any challenge of this request, from what we learned. */
  async #authorizationFor(challenge: AuthChallenge | undefined, scope: string | undefined): Promise<string | undefined> {
    if (challenge?.scheme === 'bearer') return this.#bearer(challenge, scope);
    if (challenge?.scheme === 'basic') return this.#basicAuth;
    return undefined;
  }

  /** What to retry a 401 with, or undefined when a retry cannot help. */
  async #retryAuthorization(challenge: AuthChallenge, scope: string | undefined, sent: string | undefined): Promise<string | undefined> {
    if (challenge.scheme === 'basic') return this.#basicAuth !== undefined && sent !== this.#basicAuth ? this.#basicAuth : undefined;
    const key = this.#tokenKey(challenge, challenge.params.scope ?? scope);
    if (!key) return undefined;
    if (sent?.startsWith('Bearer ')) this.#tokens.invalidate(key, sent.slice('Bearer '.length));
    return `Bearer ${await this.#tokens.get(key, () => this.#fetchToken(key))}`;
  }

  async #bearer(challenge: AuthChallenge, scope: string | undefined): Promise<string | undefined> {
    const key = this.#tokenKey(challenge, scope);
    return key && `Bearer ${await this.#tokens.get(key, () => this.#fetchToken(key))}`;
  }

  #tokenKey(challenge: AuthChallenge, scope: string | undefined): TokenKey | undefined {
    const realm = challenge.params.realm;
    if (!realm || !/^https?:\/\//i.test(realm)) return undefined;
    return { realm, service: challenge.params.service, scope };
  }

  /** GET realm?service=&scope= (Docker token spec), with our Basic credentials when we have them. */
  async #fetchToken(key: TokenKey): Promise<IssuedToken> {
    const url = new URL(key.realm);
    if (key.service !== undefined) url.searchParams.set('service', key.service);
    if (key.scope !== undefined) url.searchParams.set('scope', key.scope);
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, accept: 'application/json' };
    if (this.#basicAuth) headers.authorization = this.#basicAuth;
    const res = await this.#dispatch({ method: 'GET', url, headers });
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      throw new UpstreamDeniedError(this.name, res.statusCode);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new UpstreamFailure(this.name, 'auth-server', `token endpoint answered HTTP ${res.statusCode}`);
    }
    const text = await readSmallText(res.body, MAX_TOKEN_RESPONSE_BYTES).catch((err: unknown) => {
      throw toUpstreamFailure(this.name, err) ?? err;
    });
    return parseTokenResponse(this.name, text);
  }

  /** One request, following redirects; Authorization goes only to the upstream's own origin. */
  async #send(req: UpstreamRequest, authorization: string | undefined): Promise<Omit<UpstreamResponse, 'authRejected'>> {
    let url = new URL(this.#basePath + req.path, this.#origin);
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...req.headers };
    if (authorization) headers.authorization = authorization;
    for (let hop = 0; ; hop++) {
      const res = await this.#dispatch({ method: req.method, url, headers, signal: req.signal });
      const location = res.headers.location;
      if (!REDIRECT_STATUSES.has(res.statusCode) || typeof location !== 'string') return res;
      await res.body.dump();
      if (hop === MAX_REDIRECTS) throw new UpstreamProtocolError(this.name, `more than ${MAX_REDIRECTS} redirects`);
      url = new URL(location, url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UpstreamProtocolError(this.name, `redirect to ${url.protocol} URL`);
      if (url.origin !== this.#origin) delete headers.authorization;
    }
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
      throw toUpstreamFailure(this.name, err) ?? err;
    }
  }
}

function isStaleConnectionError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET';
}

async function readSmallText(body: UpstreamBody, limit: number): Promise<string> {
  let text = '';
  for await (const chunk of body) {
    text += Buffer.from(chunk).toString('utf8');
    if (text.length > limit) {
      body.destroy();
      throw new Error(`token response larger than ${limit} bytes`);
    }
  }
  return text;
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
