// wharf's Prometheus metrics: one registry per process, created by the composition root and
// passed to whoever counts. Labels name upstreams, kinds and outcomes, never a repository, tag
// or digest (unbounded cardinality).
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { BreakerState } from '../proxy/circuit-breaker.ts';

const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

export class Metrics {
  readonly registry = new Registry();
  /** Cached content served because the upstream could not answer. */
  readonly staleServed: Counter<'kind' | 'upstream'>;
  readonly breakerState: Gauge<'upstream'>;
  readonly breakerTransitions: Counter<'upstream' | 'state'>;
  /** Upstream requests that got no usable answer, by why (refused, headers-timeout, http-5xx, ...). */
  readonly upstreamFailures: Counter<'upstream' | 'reason'>;
  readonly manifestStoreErrors: Counter<'backend' | 'operation'>;
  /** Blobs served straight from the upstream without caching (disk full or unwritable). */
  readonly blobCacheBypassed: Counter<'reason'>;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.staleServed = new Counter({
      name: 'wharf_stale_served_total',
      help: 'Cached content served because the upstream could not answer (timeout, refused, 5xx, 429, breaker open)',
      labelNames: ['kind', 'upstream'],
      registers,
    });
    this.breakerState = new Gauge({
      name: 'wharf_upstream_breaker_state',
      help: 'Circuit breaker state per upstream: 0 closed, 1 half-open (probing), 2 open',
      labelNames: ['upstream'],
      registers,
    });
    this.breakerTransitions = new Counter({
      name: 'wharf_upstream_breaker_transitions_total',
      help: 'Circuit breaker state changes per upstream, by the state entered',
      labelNames: ['upstream', 'state'],
      registers,
    });
    this.upstreamFailures = new Counter({
      name: 'wharf_upstream_failures_total',
      help: 'Upstream requests without a usable answer, by reason',
      labelNames: ['upstream', 'reason'],
      registers,
    });
    this.manifestStoreErrors = new Counter({
      name: 'wharf_manifest_store_errors_total',
      help: 'Manifest store operations that failed (the request went on without the store)',
      labelNames: ['backend', 'operation'],
      registers,
    });
    this.blobCacheBypassed = new Counter({
      name: 'wharf_blob_cache_bypassed_total',
      help: 'Blobs passed through from the upstream without caching because the blob store could not write',
      labelNames: ['reason'],
      registers,
    });
  }

  setBreakerState(upstream: string, state: BreakerState): void {
    this.breakerState.set({ upstream }, BREAKER_STATE_VALUE[state]);
    this.breakerTransitions.inc({ upstream, state });
  }
}
