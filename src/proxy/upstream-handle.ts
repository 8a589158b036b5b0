// A configured upstream as the services see it: its name, naming rules, client and breaker.
// askUpstream is the one door to an upstream: it refuses in offline mode, fails fast while the
// breaker is open, and tells the breaker how each request went.
import type { UpstreamClient, UpstreamRequest, UpstreamResponse, UpstreamTimeouts } from './upstream-client.ts';
import type { ConfiguredUpstream } from './upstream-router.ts';
import type { CircuitBreaker } from './circuit-breaker.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { UpstreamUnavailableError } from '../errors.ts';
import { UpstreamFailure } from './upstream-failure.ts';
import { headerValue, isOutage } from './upstream-answer.ts';

/** offline (from ConfiguredUpstream): serve only the cache; never send this upstream a request. */
export interface UpstreamHandle extends ConfiguredUpstream {
  readonly client: UpstreamClient;
  readonly breaker: CircuitBreaker;
  /** An upstream silent for this long is unresponsive: the breaker opens, cached copies are served. */
  readonly staleAfterMs: number;
  /** This upstream's deadlines (the global ones where it sets none). */
  readonly timeouts: UpstreamTimeouts;
  readonly metrics: Metrics;
}

/**
 * One request to the upstream. totalMs bounds the whole answer, body included (the signal goes
 * with the body): an upstream that drips a small answer byte by byte is cut off there.
 */
export async function askUpstream(upstream: UpstreamHandle, req: UpstreamRequest & { readonly totalMs?: number }): Promise<UpstreamResponse> {
  if (upstream.offline) throw new UpstreamUnavailableError(upstream.name, 'wharf is in offline mode');
  const { breaker } = upstream;
  if (!breaker.allowRequest()) {
    throw new UpstreamUnavailableError(upstream.name, 'not answering; circuit breaker open', breaker.retryAfterSeconds());
  }
  const hung = setTimeout(() => breaker.trip(`no answer within ${upstream.staleAfterMs} ms`), upstream.staleAfterMs);
  const stopTimer = upstream.metrics.upstreamLatency.startTimer({ upstream: upstream.name });
  try {
    const deadline = req.totalMs === undefined ? undefined : AbortSignal.timeout(req.totalMs);
    const signal = deadline && req.signal ? AbortSignal.any([deadline, req.signal]) : (deadline ?? req.signal);
    const res = await upstream.client.request({ ...req, signal });
    stopTimer();
    recordAnswer(upstream, req.method, res);
    if (isOutage(res.statusCode)) {
      upstream.metrics.upstreamFailures.inc({ upstream: upstream.name, reason: `http-${res.statusCode}` });
      breaker.recordErrorAnswer(`HTTP ${res.statusCode}`);
    } else {
      breaker.recordSuccess();
    }
    return res;
  } catch (err) {
    if (err instanceof UpstreamFailure) {
      upstream.metrics.upstreamRequests.inc({ upstream: upstream.name, method: req.method, status_class: 'error' });
      upstream.metrics.upstreamFailures.inc({ upstream: upstream.name, reason: err.kind });
      breaker.recordFailure(err.reason);
      throw new UpstreamUnavailableError(upstream.name, err.reason);
    }
    throw err;
  } finally {
    clearTimeout(hung);
  }
}

/**
 * What a body that broke off means: the upstream gave no usable answer. Past the whole-response
 * deadline (askUpstream's totalMs) it is counted as a failure of the upstream, as in the headers.
 */
export function interruptedBody(upstream: UpstreamHandle, err: unknown): UpstreamUnavailableError {
  if (err instanceof Error && err.name === 'TimeoutError') {
    const why = `answer not complete within ${upstream.timeouts.manifestTotalMs} ms`;
    upstream.metrics.upstreamFailures.inc({ upstream: upstream.name, reason: 'total-timeout' });
    upstream.breaker.recordFailure(why);
    return new UpstreamUnavailableError(upstream.name, why);
  }
  return new UpstreamUnavailableError(upstream.name, `body interrupted: ${err instanceof Error ? err.message : String(err)}`);
}

function recordAnswer(upstream: UpstreamHandle, method: string, res: UpstreamResponse): void {
  const { metrics, name } = upstream;
  metrics.upstreamRequests.inc({ upstream: name, method, status_class: `${Math.floor(res.statusCode / 100)}xx` });
  // Docker Hub: "RateLimit-Remaining: 76;w=21600" (pulls left in a 6 h window).
  const remaining = /^\s*(\d+)/.exec(headerValue(res.headers['ratelimit-remaining']) ?? '');
  if (remaining) metrics.upstreamRateLimitRemaining.set({ upstream: name }, Number(remaining[1]));
}
