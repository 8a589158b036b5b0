// wharf's Prometheus metrics: one registry per process, created by the composition root and
// passed to whoever counts. Labels name upstreams, kinds and outcomes, never a repository, tag
// or digest (unbounded cardinality). Every name is listed in the README.
import { RequestTally } from './request-tally.ts';
import { TalliedHistogram } from './tallied-histogram.ts';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { BreakerState } from '../proxy/circuit-breaker.ts';

/** Another thread's metrics, as prom-client JSON. */
export type MetricsSource = () => Promise<Array<MetricObjectWithValues<MetricValue<string>>>>;

const REQUEST_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120];

const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

export type RequestKind = 'manifest' | 'blob' | 'tags' | 'referrers' | 'base' | 'other';

/** What the status page reports of the traffic, summed over every thread. */
export interface TrafficFigures {
  /** Manifest and blob requests by cache result (hit, miss, coalesced, ...). */
  readonly requestsByResult: Readonly<Record<string, number>>;
  /** Bytes sent to clients by cache result. */
  readonly servedBytesByResult: Readonly<Record<string, number>>;
  /** Bytes read from upstreams. */
  readonly upstreamBytes: number;
  readonly cacheBlobs: number;
  readonly cacheBytes: number;
}

// Names read back from the combined registry of every thread (figures()).
const REQUESTS = 'wharf_requests_total';
const SERVED_BYTES = 'wharf_served_bytes_total';

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'kind' | 'result' | 'upstream'>;
  readonly requestDuration: TalliedHistogram<'kind'>;
  /** Bytes sent to clients (headers included), by where the answer came from. */
  readonly servedBytes: Counter<'kind' | 'result'>;
  readonly upstreamRequests: Counter<'upstream' | 'method' | 'status_class'>;
  readonly upstreamLatency: Histogram<'upstream'>;
  /** Body bytes received from upstreams (blobs and manifests). */
  readonly upstreamBytes: Counter<'upstream'>;
  readonly upstreamRateLimitRemaining: Gauge<'upstream'>;
  /** Cached content served because the upstream could not answer. */
  readonly staleServed: Counter<'kind' | 'upstream'>;
  readonly breakerState: Gauge<'upstream'>;
  readonly breakerTransitions: Counter<'upstream' | 'state'>;
  /** Upstream requests that got no usable answer, by why (refused, headers-timeout, http-503, ...). */
  readonly upstreamFailures: Counter<'upstream' | 'reason'>;
  readonly fillsInFlight: Gauge;
  readonly cacheBytes: Gauge;
  readonly cacheBlobs: Gauge;
  readonly cacheEvictions: Counter;
  readonly manifestStoreOperations: Counter<'backend' | 'operation'>;
  readonly manifestStoreErrors: Counter<'backend' | 'operation'>;
  /** Blobs served straight from the upstream without caching (disk full or unwritable). */
  readonly blobCacheBypassed: Counter<'reason'>;
  /** Authentication and authorisation outcomes (ok, denied, bad-credentials, expired) by identity kind. */
  readonly auth: Counter<'result' | 'kind'>;
  readonly fillLeases: Counter<'outcome'>;
  readonly upstreamWaiting: Gauge<'upstream'>;
  readonly prefetches: Counter<'upstream' | 'outcome'>;
  readonly fillBytes: Counter<'origin'>;
  readonly sharedPublishes: Counter<'result'>;
  readonly s3Requests: Histogram<'operation' | 'outcome'>;
  readonly #tally = new RequestTally();
  /** Log lines dropped because the log output was slower than they came (read off the writer). */
  readonly logLinesDropped: Counter;
  /** threads > 1: what the main thread wrote back to hit threads for the requests they handed over. */
  readonly handoverBytes: Counter<'answer'>;
  #droppedLogLines: () => number = () => 0;
  /** Hit threads count in their own registries; their figures are added in when read. */
  readonly #remotes: MetricsSource[] = [];

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Counter<L>({ name, help, labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => new Gauge<L>({ name, help, labelNames, registers });

    const tally = this.#tally;
    this.requests = new Counter({
      name: REQUESTS,
      help: 'Registry API requests by kind, cache result (hit, miss, coalesced, revalidated, stale, bypass, error) and upstream',
      labelNames: ['kind', 'result', 'upstream'],
      registers,
      collect() {
        tally.drainRequests(this);
      },
    });
    this.auth = counter('wharf_auth_total', 'Authentication and access decisions by result (ok, denied, bad-credentials, expired) and identity kind (anonymous, user, machine, certificate)', ['result', 'kind']);
    this.requestDuration = new TalliedHistogram({
      name: 'wharf_request_duration_seconds',
      help: 'Time from request to the end of the response',
      label: 'kind',
      buckets: REQUEST_DURATION_BUCKETS,
      registers,
    });
    this.servedBytes = new Counter({
      name: SERVED_BYTES,
      help: 'Bytes sent to clients, by kind and cache result (hit bytes are bytes saved upstream)',
      labelNames: ['kind', 'result'],
      registers,
      collect() {
        tally.drainBytes(this);
      },
    });
    this.upstreamRequests = counter('wharf_upstream_requests_total', 'Requests to upstreams by method and status class (2xx..5xx, or error: no answer)', ['upstream', 'method', 'status_class']);
    this.upstreamLatency = new Histogram({
      name: 'wharf_upstream_request_duration_seconds',
      help: 'Time until an upstream answered with response headers',
      labelNames: ['upstream'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.upstreamBytes = counter('wharf_upstream_bytes_total', 'Body bytes fetched from upstreams (blobs and manifests)', ['upstream']);
    this.upstreamRateLimitRemaining = gauge('wharf_upstream_ratelimit_remaining', 'Pulls left in the upstream rate-limit window, as last reported (Docker Hub RateLimit-Remaining)', ['upstream']);
    this.staleServed = counter('wharf_stale_served_total', 'Cached content served because the upstream could not answer (timeout, refused, 5xx, 429, breaker open)', ['kind', 'upstream']);
    this.breakerState = gauge('wharf_upstream_breaker_state', 'Circuit breaker state per upstream: 0 closed, 1 half-open (probing), 2 open', ['upstream']);
    this.breakerTransitions = counter('wharf_upstream_breaker_transitions_total', 'Circuit breaker state changes per upstream, by the state entered', ['upstream', 'state']);
    this.upstreamFailures = counter('wharf_upstream_failures_total', 'Upstream requests without a usable answer, by reason', ['upstream', 'reason']);
    this.fillsInFlight = gauge('wharf_blob_fills_in_flight', 'Blob downloads into the cache running now');
    this.cacheBytes = gauge('wharf_cache_blob_bytes', 'Bytes of blobs in the cache');
    this.cacheBlobs = gauge('wharf_cache_blobs', 'Blobs in the cache');
    this.cacheEvictions = counter('wharf_cache_evictions_total', 'Blobs evicted from the cache');
    this.manifestStoreOperations = counter('wharf_manifest_store_operations_total', 'Manifest store operations that reached the backend', ['backend', 'operation']);
    this.manifestStoreErrors = counter('wharf_manifest_store_errors_total', 'Manifest store operations that failed (the request went on without the store)', ['backend', 'operation']);
    this.prefetches = counter('wharf_prefetched_blobs_total', 'Blobs of a served manifest fetched ahead of any client (upstreams[].prefetch), by outcome: started, cached (already there or filling), skipped (disk full, offline, failed)', ['upstream', 'outcome']);
    this.upstreamWaiting = gauge('wharf_upstream_requests_waiting', "Requests waiting in line for a turn under the upstream's limits (upstreams[].limits)", ['upstream']);
    this.fillLeases = counter('wharf_fill_leases_total', 'Blob fills by how the replicas shared them: won (this replica fetched it), followed (streamed from the replica that did), taken-over (that replica died; the rest came from the upstream), peer-failed and unavailable (Redis away) both fetched it again', ['outcome']);
    this.fillBytes = counter('wharf_blob_fill_bytes_total', "Bytes brought into this replica's disk cache, by origin: upstream, s3 (the shared store) or peer (another replica)", ['origin']);
    this.sharedPublishes = counter('wharf_shared_blob_publishes_total', 'Blobs this replica fetched from the upstream and offered to the shared store: published, present (another replica had), failed', ['result']);
    this.s3Requests = new Histogram({
      name: 'wharf_s3_request_duration_seconds',
      help: 'S3 requests of the shared blob store by operation and outcome (ok or the error code), until the answer headers',
      labelNames: ['operation', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    const droppedLogLines = () => this.#droppedLogLines();
    this.logLinesDropped = new Counter({
      name: 'wharf_log_lines_dropped_total',
      help: 'Log lines dropped because stdout took them slower than they came (memory stays bounded; serving never waits on the log)',
      registers,
      collect() {
        this.reset();
        this.inc(droppedLogLines());
      },
    });
    this.handoverBytes = counter('wharf_thread_handover_bytes_total', 'threads > 1: bytes the main thread wrote back to hit threads (heads and bodies) for requests they handed over, by answer: streamed (the body itself) or followed (a running fill: its progress only, the hit thread sent the blob from the file)', ['answer']);
    this.blobCacheBypassed = counter('wharf_blob_cache_bypassed_total', 'Blobs passed through from the upstream without caching because the blob store could not take them', ['reason']);
  }

  /** One answered request: wharf_requests_total and wharf_served_bytes_total, tallied until read. */
  countRequest(kind: RequestKind, result: string, upstream: string, bytes: number): void {
    this.#tally.count(kind, result, upstream, bytes);
  }

  /** Where wharf_log_lines_dropped_total is read from: the log writer's own count. */
  countDroppedLogLines(read: () => number): void {
    this.#droppedLogLines = read;
  }

  addRemote(source: MetricsSource): void {
    this.#remotes.push(source);
  }

  /** The Prometheus text of this registry plus every remote one, summed series by series. */
  async text(): Promise<string> {
    return (await this.combined()).metrics();
  }

  /** This registry summed with the remote ones: read it once per report, it costs a round trip per thread. */
  async combined(): Promise<Registry> {
    if (this.#remotes.length === 0) return this.registry;
    const remote = await Promise.all(this.#remotes.map((source) => source().catch(() => [])));
    return AggregatorRegistry.aggregate([await this.registry.getMetricsAsJSON(), ...remote]);
  }

  /** The traffic figures of every thread, from one read of the combined registry. */
  async figures(): Promise<TrafficFigures> {
    const everyThread = await this.combined();
    const byResult = async (name: string, keep: (labels: Partial<Record<string, string | number>>) => boolean) => {
      const sums: Record<string, number> = {};
      for (const { labels, value } of await seriesOf(everyThread, name)) {
        if (!keep(labels)) continue;
        const result = String(labels.result);
        sums[result] = (sums[result] ?? 0) + value;
      }
      return sums;
    };
    const firstValue = async (gauge: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await gauge.get()).values[0]?.value ?? 0;
    return {
      requestsByResult: await byResult(REQUESTS, (l) => l.kind === 'manifest' || l.kind === 'blob'),
      servedBytesByResult: await byResult(SERVED_BYTES, () => true),
      upstreamBytes: (await this.upstreamBytes.get()).values.reduce((sum, v) => sum + v.value, 0),
      cacheBlobs: await firstValue(this.cacheBlobs),
      cacheBytes: await firstValue(this.cacheBytes),
    };
  }

  /** Makes an upstream's series exist from the start (dashboards show 0, not "no data"). */
  addUpstream(upstream: string): void {
    this.breakerState.set({ upstream }, 0);
  }

  setBreakerState(upstream: string, state: BreakerState): void {
    this.breakerState.set({ upstream }, BREAKER_STATE_VALUE[state]);
    this.breakerTransitions.inc({ upstream, state });
  }
}

/** One metric's series in a registry (none if it has no such metric). */
async function seriesOf(registry: Registry, name: string): Promise<Array<MetricValue<string>>> {
  const metric = registry.getSingleMetric(name);
  return metric ? (await metric.get()).values : [];
}
