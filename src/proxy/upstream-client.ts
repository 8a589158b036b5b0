// HTTP to one configured upstream registry, as a short chain: redirects (checked against the
// DialPolicy) around auth per hop (hop-auth.ts: each host's challenge answered for that host and
// the repository of that hop's path, as registry.k8s.io redirects to another registry under
// another path) around the transport (upstream-transport.ts). It knows nothing about caching.
import type { Dispatcher } from 'undici';
import type { Config } from '../config/load-config.ts';
import type { IncomingHttpHeaders } from 'node:http';
import { UpstreamProtocolError } from '../errors.ts';
import { DialPolicy } from './dial-policy.ts';
import { HopAuth } from './hop-auth.ts';
import { createTransport, type Transport } from './upstream-transport.ts';

/**
 * What the client takes from an upstream's configuration (load-config.ts): where it is, its
 * credentials, and the hosts its redirects (redirectHosts) and token realms (authRealmHosts)
 * may lead to beyond the defaults.
 */
export type UpstreamTarget = Pick<Config['upstreams'][number], 'name' | 'url' | 'username' | 'password' | 'redirectHosts' | 'authRealmHosts'> &
  Partial<Pick<Config['upstreams'][number], 'passwordFile' | 'credentialHelper' | 'aad'>>;

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
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * The upstream's chain, outermost first: redirects (here: each target checked, at most
 * MAX_REDIRECTS), auth per hop (hop-auth.ts), the transport (upstream-transport.ts: pools,
 * deadlines, undici's retry interceptor, the dial policy). undici's redirect interceptor is not
 * used: it can neither check each target nor let each hop answer its own challenge.
 */
export class UpstreamClient {
  readonly name: string;
  readonly baseUrl: string;
  readonly #origin: string;
  readonly #basePath: string;
  readonly #userAgent: string;
  readonly #dial: DialPolicy;
  readonly #transport: Transport;
  readonly #auth: HopAuth;

  constructor(options: { upstream: UpstreamTarget; timeouts: UpstreamTimeouts; userAgent?: string; onCredentialsWithheld?: (realm: string, why: string) => void }) {
    const { upstream, timeouts } = options;
    const base = new URL(upstream.url);
    this.name = upstream.name;
    this.baseUrl = upstream.url;
    this.#origin = base.origin;
    this.#basePath = base.pathname.replace(/\/+$/, '');
    this.#userAgent = options.userAgent ?? 'wharf';
    this.#dial = new DialPolicy(base.hostname, upstream.redirectHosts);
    this.#transport = createTransport(upstream.name, timeouts, this.#dial);
    this.#auth = new HopAuth({ target: upstream, userAgent: this.#userAgent, tokenTimeoutMs: timeouts.manifestTotalMs, onWithheld: options.onCredentialsWithheld, checkUrl: (url) => this.#dial.checkLiteral(url) });
  }

  /** One request, following redirects; each hop authenticates for itself. */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    let url = new URL(this.#basePath + req.path, this.#origin);
    const headers = { 'user-agent': this.#userAgent, ...req.headers };
    for (let hop = 0; ; hop++) {
      const repository = hop === 0 ? req.repository : repositoryOfPath(url.pathname);
      const res = await this.#auth.send(this.#transport.dispatch, { method: req.method, url, headers, signal: req.signal }, repository);
      const location = res.headers.location;
      if (!REDIRECT_STATUSES.has(res.statusCode) || typeof location !== 'string') return res;
      await res.body.dump();
      if (hop === MAX_REDIRECTS) throw new UpstreamProtocolError(this.name, `more than ${MAX_REDIRECTS} redirects`);
      url = this.#redirectTarget(location, url);
    }
  }

  async close(): Promise<void> {
    await this.#transport.close();
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
    try {
      this.#dial.checkLiteral(url);
    } catch (err) {
      throw new UpstreamProtocolError(this.name, (err as Error).message);
    }
    return url;
  }
}

/** The repository a registry API path names (/v2/<name>/manifests|blobs|tags|referrers/...). */
function repositoryOfPath(pathname: string): string | undefined {
  return /^(?:\/[^/]+)*?\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)\//.exec(pathname)?.[1];
}
