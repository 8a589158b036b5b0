// One configured upstream registry as the services see it: get() and head() return a 2xx
// answer or a typed error, so no service looks at status codes to decide what an outage is.
// Behind them: offline mode, the circuit breaker (fail fast while open, told how each request
// went), the hang trip, the whole-response deadline for small answers, upstream metrics, and
// the client (auth per hop, redirects, deadlines).
import type { Logger } from 'pino';
import { RegistryError, UpstreamRateLimitedError, UpstreamUnavailableError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.ts';
import { UpstreamClient, type UpstreamBody, type UpstreamResponse, type UpstreamTimeouts } from './upstream-client.ts';
import { UpstreamFailure } from './upstream-failure.ts';
import { HeadNotSupportedError, headerValue, isOutage, upstreamAnswerError } from './upstream-answer.ts';
import { UpstreamBusyError, UpstreamLimiter } from './upstream-limiter.ts';

const MAX_RETRY_AFTER_MS = 10 * 60_000;
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
  /** A cached copy can be served instead (a revalidation): wait in line no longer than staleAfterMs. */
  readonly cachedCopy?: boolean;
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
  /** upstreams[].prefetch: fetch a served manifest's blobs ahead of the clients. */
  readonly prefetch: boolean;
  /** This upstream's deadlines (the global ones where it sets none). */
  readonly timeouts: UpstreamTimeouts;
  get(ask: UpstreamAsk): Promise<UpstreamOk>;
  head(ask: UpstreamAsk): Promise<UpstreamOk>;
  interruptedBody(err: unknown): UpstreamUnavailableError;
  /** A cached copy stood in for this upstream's answer (for metrics). */
  servedStale(kind: 'manifest' | 'tags' | 'referrers'): void;
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
  readonly prefetch: boolean;
  /** This upstream's deadlines (the global ones where it sets none). */
  readonly timeouts: UpstreamTimeouts;
  readonly breaker: CircuitBreaker;
  readonly metrics: Metrics;
  readonly #clients: readonly UpstreamClient[];
  readonly #log: Logger;
  readonly #limiter: UpstreamLimiter;
  readonly #maxWaitMs: number;
  /** A 429's Retry-After: until then nothing is sent, every request is told to retry later. */
  #blockedUntil = 0;

  constructor(target: Config['upstreams'][number], settings: UpstreamSettings, deps: { metrics: Metrics; logger: Logger }) {
    this.name = target.name;
    this.libraryPrefix = target.libraryPrefix;
    this.offline = settings.offline;
    this.staleAfterMs = settings.staleAfterMs;
    this.prefetch = target.prefetch;
    this.timeouts = target.timeouts;
    this.metrics = deps.metrics;
    this.#log = deps.logger;
    this.#limiter = new UpstreamLimiter(target.limits ?? {});
    this.#maxWaitMs = target.limits?.maxWaitMs ?? 30_000;
    // url first, then each fallback URL, in order: one client each (its own pools, tokens, challenges).
    this.#clients = [target.url, ...target.fallbackUrls].map(
      (url) =>
        new UpstreamClient({
          upstream: { ...target, url },
          timeouts: target.timeouts,
          onCredentialsWithheld: (realm, why) => deps.logger.warn({ upstream: target.name, realm }, `token realm refused: ${why}`),
        }),
    );
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

  servedStale(kind: 'manifest' | 'tags' | 'referrers'): void {
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
    this.#limiter.close();
    this.breaker.stop();
    await Promise.all(this.#clients.map((c) => c.close()));
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
    const blockedFor = this.#blockedUntil - Date.now();
    if (blockedFor > 0) {
      metrics.upstreamFailures.inc({ upstream: name, reason: 'retry-after' });
      throw new UpstreamRateLimitedError(name, String(Math.ceil(blockedFor / 1000)));
    }
    const release = await this.#turn(ask);
    try {
      const res = await this.#request(method, ask);
      if (res.statusCode === 429) this.#honourRetryAfter(headerValue(res.headers['retry-after']));
      // The turn lasts until the body is read or dropped: a blob download holds it throughout.
      if (res.body.destroyed || res.body.readableEnded) release();
      else res.body.once('close', release);
      return res;
    } catch (err) {
      release();
      throw err;
    }
  }

  /** A turn under this upstream's limits; a request that would wait too long is refused as an outage. */
  async #turn(ask: UpstreamAsk): Promise<() => void> {
    const limiter = this.#limiter;
    if (!limiter.limits) return () => undefined;
    this.metrics.upstreamWaiting.set({ upstream: this.name }, limiter.waiting + 1);
    try {
      // With a cached copy to serve instead, no longer than a client may wait for it.
      return await limiter.acquire(ask.cachedCopy ? this.staleAfterMs : this.#maxWaitMs);
    } catch (err) {
      if (!(err instanceof UpstreamBusyError)) throw err;
      this.metrics.upstreamFailures.inc({ upstream: this.name, reason: 'queued-too-long' });
      throw new UpstreamUnavailableError(this.name, `at its request limits: ${err.message}`, 1);
    } finally {
      this.metrics.upstreamWaiting.set({ upstream: this.name }, limiter.waiting);
    }
  }

  /**
   * Retry-After in seconds or as an HTTP date, at most 10 minutes. Absent or unreadable, there is
   * nothing to honour: the 429 counts for the breaker like any error answer.
   */
  #honourRetryAfter(value: string | undefined): void {
    const text = value?.trim() ?? '';
    const seconds = /^\d+$/.test(text) ? Number(text) : /[a-z]/i.test(text) ? (Date.parse(text) - Date.now()) / 1000 : NaN;
    if (!Number.isFinite(seconds) || seconds <= 0) return;
    const ms = Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
    this.#blockedUntil = Math.max(this.#blockedUntil, Date.now() + ms);
    this.#log.warn({ upstream: this.name, retryAfterSeconds: Math.round(ms / 1000) }, 'upstream rate limit reached (429); sending it nothing until Retry-After');
  }

  async #request(method: 'GET' | 'HEAD', ask: UpstreamAsk): Promise<UpstreamResponse> {
    const { breaker, metrics, name } = this;
    const hung = setTimeout(() => breaker.trip(`no answer within ${this.staleAfterMs} ms`), this.staleAfterMs);
    const stopTimer = metrics.upstreamLatency.startTimer({ upstream: name });
    try {
      // The deadline's signal goes with the body too: an upstream that drips a small answer
      // byte by byte is cut off there.
      const signal = ask.small ? AbortSignal.timeout(this.timeouts.manifestTotalMs) : undefined;
      const headers = ask.accept || ask.range ? { ...(ask.accept && { accept: ask.accept }), ...(ask.range && { range: ask.range }) } : undefined;
      const res = await this.#firstAnswer({ method, path: ask.path, repository: ask.repository, headers, signal });
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

  /**
   * The first usable answer among url and the fallback URLs, in order: one that gives no answer,
   * an error answer (5xx, 429) or a 404 hands the request to the next; the last one's stands.
   */
  async #firstAnswer(req: Parameters<UpstreamClient['request']>[0]): Promise<UpstreamResponse> {
    const clients = this.#clients;
    for (let i = 0; ; i++) {
      const client = clients[i]!;
      if (i === clients.length - 1) return client.request(req);
      try {
        const res = await client.request(req);
        if (res.statusCode !== 404 && !isOutage(res.statusCode)) return res;
        await res.body.dump().catch(() => undefined);
        this.metrics.upstreamFailures.inc({ upstream: this.name, reason: `fallback-after-http-${res.statusCode}` });
      } catch (err) {
        if (!(err instanceof UpstreamFailure) || req.signal?.aborted) throw err;
        this.metrics.upstreamFailures.inc({ upstream: this.name, reason: `fallback-after-${err.kind}` });
      }
      this.#log.debug({ upstream: this.name, from: client.baseUrl, to: clients[i + 1]!.baseUrl }, 'trying the next URL of the upstream');
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
    const res = await this.#clients[0]!.request({ method: 'GET', path: '/v2/' });
    await res.body.dump();
    return !isOutage(res.statusCode);
  }
}
