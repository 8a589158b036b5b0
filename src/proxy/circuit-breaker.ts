// A circuit breaker per upstream. While it is open no client request goes upstream: cached
// content is served at once (stale) and uncached requests fail fast with 503, instead of every
// request waiting out its own timeout. Recovery is found by a background probe, so no client
// request pays for discovering that the upstream is still down.
//
// It opens after `failureThreshold` consecutive failures (refused, reset, 5xx, 429), or at once
// when a request hangs (no answer within the unresponsive limit): one hang already costs a
// client seconds, and a blackholed upstream would make every request hang.

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  readonly failureThreshold: number;
  /** First wait before probing; doubles after each failed probe up to maxOpenMs. */
  readonly openMs: number;
  readonly maxOpenMs: number;
  /** Resolves true when the upstream answers again. Must settle on its own (has deadlines). */
  readonly probe: () => Promise<boolean>;
  readonly onStateChange?: (state: BreakerState, reason: string) => void;
}

export class CircuitBreaker {
  readonly #options: CircuitBreakerOptions;
  #state: BreakerState = 'closed';
  #failures = 0;
  #openMs: number;
  #openedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lastSuccessAt: number | undefined;
  #lastFailure: { at: number; reason: string } | undefined;

  constructor(options: CircuitBreakerOptions) {
    this.#options = options;
    this.#openMs = options.openMs;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** When the upstream last answered, and the last failure: for health reports. */
  get lastSuccessAt(): number | undefined {
    return this.#lastSuccessAt;
  }

  get lastFailure(): { at: number; reason: string } | undefined {
    return this.#lastFailure;
  }

  /** Whether a client request may go upstream now. */
  allowRequest(): boolean {
    return this.#state === 'closed';
  }

  /** Seconds until the next probe: a Retry-After for clients turned away. */
  retryAfterSeconds(): number {
    if (this.#state === 'closed') return 0;
    return Math.max(1, Math.ceil((this.#openedAt + this.#openMs - Date.now()) / 1000));
  }

  /** The upstream answered (any status but 5xx/429): it is reachable. */
  recordSuccess(): void {
    this.#lastSuccessAt = Date.now();
    this.#failures = 0;
    if (this.#state !== 'closed') this.#close('upstream answered');
  }

  recordFailure(reason: string): void {
    this.#lastFailure = { at: Date.now(), reason };
    this.#failures++;
    if (this.#state === 'closed' && this.#failures >= this.#options.failureThreshold) {
      this.#open(`${this.#failures} consecutive failures, last: ${reason}`);
    }
  }

  /** Opens now: a request has hung past the unresponsive limit. */
  trip(reason: string): void {
    this.#lastFailure = { at: Date.now(), reason };
    if (this.#state === 'closed') this.#open(reason);
  }

  /** Stops probing (shutdown). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #open(reason: string): void {
    this.#state = 'open';
    this.#openedAt = Date.now();
    this.#options.onStateChange?.('open', reason);
    this.#scheduleProbe();
  }

  #close(reason: string): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#state = 'closed';
    this.#failures = 0;
    this.#openMs = this.#options.openMs;
    this.#options.onStateChange?.('closed', reason);
  }

  #scheduleProbe(): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#runProbe(), this.#openMs);
    this.#timer.unref();
  }

  async #runProbe(): Promise<void> {
    if (this.#state !== 'open' || this.#stopped) return;
    this.#state = 'half-open';
    this.#options.onStateChange?.('half-open', 'probing');
    const alive = await this.#options.probe().catch(() => false);
    // A client request may have closed the breaker meanwhile (a slow answer arriving late).
    if (this.#state !== 'half-open' || this.#stopped) return;
    if (alive) {
      this.#lastSuccessAt = Date.now();
      this.#close('probe answered');
      return;
    }
    this.#openMs = Math.min(this.#openMs * 2, this.#options.maxOpenMs);
    this.#state = 'open';
    this.#openedAt = Date.now();
    this.#options.onStateChange?.('open', 'probe failed');
    this.#scheduleProbe();
  }
}
