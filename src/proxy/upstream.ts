// One configured upstream registry as the services see it: get() and head() return a 2xx
// answer or a typed error, so no service looks at status codes to decide what an outage is.
// Behind them: offline mode, the circuit breaker (fail fast while open, told how each request
// went), the hang trip, the whole-response deadline for small answers, upstream metrics, and
// the client (auth per hop, redirects, deadlines).
import type { Logger } from 'pino';
import { RegistryError, UpstreamUnavailableError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.ts';
import { UpstreamClient, type UpstreamBody, type UpstreamResponse, type UpstreamTimeouts } from './upstream-client.ts';
import { UpstreamFailure } from './upstream-failure.ts';
import { HeadNotSupportedError, headerValue, isOutage, upstreamAnswerError } from './upstream-answer.ts';
import type { ConfiguredUpstream } from './upstream-router.ts';
import type { Config } from '../config/load-config.ts';
import type { IncomingHttpHeaders } from 'node:http';

export interface UpstreamAsk {
  /** Path and query on the upstream, e.g. /v2/library/alpine/manifests/3.20 */
  readonly path: string;
  /** The repository the request is about: it names the token scope. */
  readonly repository: string;
  readonly accept?: string;
  /** A Range header: a 206 answer is then ok too (the caller checks its Content-Range). */
  readonly range?: string;
  /** A small answer (manifest, tag page, referrers): bounded whole by timeouts.manifestTotalMs. */
  readonly small?: boolean;
  /** The error for the upstream's "no such thing" (404, or Docker Hub's 401 after a fresh token). */
  readonly notFound: () => RegistryError;
}

/** A 2xx answer. Its body must be consumed, dumped or destroyed by the caller. */
export interface UpstreamOk {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: UpstreamBody;
}

export interface UpstreamSettings {
  readonly offline: boolean;
  /** An upstream silent for this long is unresponsive: the breaker opens, cached copies are served. */
  readonly staleAfterMs: number;
  readonly breaker: Omit<CircuitBreakerOptions, 'probe' | 'onStateChange'>;
}

/**
 * What the services need of an upstream. HttpUpstream is the real one; tests use an in-memory
 * one that counts calls.
 */
export interface Upstream extends ConfiguredUpstream {
  /** An upstream silent for this long is unresponsive: cached copies are served instead. */
  readonly staleAfterMs: number;
  /** This upstream's deadlines (the global ones where it sets none). */
  readonly timeouts: UpstreamTimeouts;
  get(ask: UpstreamAsk): Promise<UpstreamOk>;
  head(ask: UpstreamAsk): Promise<UpstreamOk>;
  interruptedBody(err: unknown): UpstreamUnavailableError;
  /** A cached copy stood in for this upstream's answer (for metrics). */
  servedStale(kind: 'manifest' | 'tags'): void;
  /** Bytes read from this upstream (for metrics). */
  received(bytes: number): void;
  /** A blob body from this upstream was cut for being slower than its minimum rate (metrics, log). */
  tooSlow(why: string): void;
}

export class HttpUpstream implements Upstream {
  readonly name: string;
  readonly libraryPrefix: boolean;
  /** Serve only the cache; never send this upstream a request. */
  readonly offline: boolean;
  readonly staleAfterMs: number;
  /** This upstream's deadlines (the global ones where it sets none). */
  readonly timeouts: UpstreamTimeouts;
  readonly breaker: CircuitBreaker;
  readonly metrics: Metrics;
  readonly #client: UpstreamClient;
  readonly #log: Logger;

  constructor(target: Config['upstreams'][number], settings: UpstreamSettings, deps: { metrics: Metrics; logger: Logger }) {
    this.name = target.name;
    this.libraryPrefix = target.libraryPrefix;
    this.offline = settings.offline;
    this.staleAfterMs = settings.staleAfterMs;
    this.timeouts = target.timeouts;
    this.metrics = deps.metrics;
    this.#log = deps.logger;
    this.#client = new UpstreamClient({
      upstream: target,
      timeouts: target.timeouts,
      onCredentialsWithheld: (realm, why) => deps.logger.warn({ upstream: target.name, realm }, `token realm refused: ${why}`),
    });
    const { logger, metrics } = deps;
    this.breaker = new CircuitBreaker({
      ...settings.breaker,
      probe: () => this.#probe(),
      onStateChange: (state, reason) => {
        metrics.setBreakerState(this.name, state);
        const log = state === 'open' ? logger.warn.bind(logger) : logger.info.bind(logger);
        log({ upstream: this.name, state, reason }, `upstream circuit breaker ${state}`);
      },
    });
    metrics.addUpstream(this.name);
  }

  /** GET: a 200 answer, else the typed error its status means (the body already dumped). */
  async get(ask: UpstreamAsk): Promise<UpstreamOk> {
    return this.#expectOk(ask, await this.#send('GET', ask));
  }

  /** HEAD: as get(), without a body; HeadNotSupportedError when the upstream answers 405. */
  async head(ask: UpstreamAsk): Promise<UpstreamOk> {
    const res = await this.#send('HEAD', ask);
    if (res.statusCode === 405) {
      await res.body.dump();
      throw new HeadNotSupportedError(this.name);
    }
    return this.#expectOk(ask, res);
  }

  /**
   * What a body that broke off means: the upstream gave no usable answer. Past the whole-response
   * deadline it is counted as a failure of the upstream, as in the headers.
   */
  interruptedBody(err: unknown): UpstreamUnavailableError {
    if (err instanceof Error && err.name === 'TimeoutError') {
      const why = `answer not complete within ${this.timeouts.manifestTotalMs} ms`;
      this.metrics.upstreamFailures.inc({ upstream: this.name, reason: 'total-timeout' });
      this.breaker.recordFailure(why);
      return new UpstreamUnavailableError(this.name, why);
    }
    return new UpstreamUnavailableError(this.name, `body interrupted: ${err instanceof Error ? err.message : String(err)}`);
  }

  servedStale(kind: 'manifest' | 'tags'): void {
    this.metrics.staleServed.inc({ kind, upstream: this.name });
  }

  received(bytes: number): void {
    this.metrics.upstreamBytes.inc({ upstream: this.name }, bytes);
  }

  tooSlow(why: string): void {
    this.metrics.upstreamFailures.inc({ upstream: this.name, reason: 'slow-body' });
    this.#log.warn({ upstream: this.name, err: why }, 'upstream blob body below the minimum rate; cut off');
  }

  async close(): Promise<void> {
    this.breaker.stop();
    await this.#client.close();
  }

  async #expectOk(ask: UpstreamAsk, res: UpstreamResponse): Promise<UpstreamOk> {
    if (res.statusCode === 200 || (ask.range !== undefined && res.statusCode === 206)) return { status: res.statusCode, headers: res.headers, body: res.body };
    await res.body.dump();
    throw upstreamAnswerError(this.name, res, ask.notFound);
  }

  /** The one door: refuses offline, fails fast while the breaker is open, tells it how it went. */
  async #send(method: 'GET' | 'HEAD', ask: UpstreamAsk): Promise<UpstreamResponse> {
    if (this.offline) throw new UpstreamUnavailableError(this.name, 'wharf is in offline mode');
    const { breaker, metrics, name } = this;
    if (!breaker.allowRequest()) {
      throw new UpstreamUnavailableError(name, 'not answering; circuit breaker open', breaker.retryAfterSeconds());
    }
    const hung = setTimeout(() => breaker.trip(`no answer within ${this.staleAfterMs} ms`), this.staleAfterMs);
    const stopTimer = metrics.upstreamLatency.startTimer({ upstream: name });
    try {
      // The deadline's signal goes with the body too: an upstream that drips a small answer
      // byte by byte is cut off there.
      const signal = ask.small ? AbortSignal.timeout(this.timeouts.manifestTotalMs) : undefined;
      const headers = ask.accept || ask.range ? { ...(ask.accept && { accept: ask.accept }), ...(ask.range && { range: ask.range }) } : undefined;
      const res = await this.#client.request({ method, path: ask.path, repository: ask.repository, headers, signal });
      stopTimer();
      this.#recordAnswer(method, res);
      if (isOutage(res.statusCode)) {
        metrics.upstreamFailures.inc({ upstream: name, reason: `http-${res.statusCode}` });
        breaker.recordErrorAnswer(`HTTP ${res.statusCode}`);
      } else {
        breaker.recordSuccess();
      }
      return res;
    } catch (err) {
      if (err instanceof UpstreamFailure) {
        metrics.upstreamRequests.inc({ upstream: name, method, status_class: 'error' });
        metrics.upstreamFailures.inc({ upstream: name, reason: err.kind });
        breaker.recordFailure(err.reason);
        throw new UpstreamUnavailableError(name, err.reason);
      }
      throw err;
    } finally {
      clearTimeout(hung);
    }
  }

  #recordAnswer(method: string, res: UpstreamResponse): void {
    const { metrics, name } = this;
    metrics.upstreamRequests.inc({ upstream: name, method, status_class: `${Math.floor(res.statusCode / 100)}xx` });
    // Docker Hub: "RateLimit-Remaining: 76;w=21600" (pulls left in a 6 h window).
    const remaining = /^\s*(\d+)/.exec(headerValue(res.headers['ratelimit-remaining']) ?? '');
    if (remaining) metrics.upstreamRateLimitRemaining.set({ upstream: name }, Number(remaining[1]));
  }

  /** The breaker's background probe: does the upstream's /v2/ answer at all (not 5xx/429)? */
  async #probe(): Promise<boolean> {
    const res = await this.#client.request({ method: 'GET', path: '/v2/' });
    await res.body.dump();
    return !isOutage(res.statusCode);
  }
}
