// A circuit breaker per upstream. While it is open no client request goes upstream: cached
// content is served at once (stale) and uncached requests fail fast with 503, instead of every
// request waiting out its own timeout. Recovery is found by a background probe, so no client
// request pays for discovering that the upstream is still down.
//
// It opens after `failureThreshold` consecutive failures to connect or answer (refused, reset,
// timeouts), or at once when a request hangs (no answer within the unresponsive limit): one hang
// already costs a client seconds, and a blackholed upstream would make every request hang.
// An error answer (5xx, 429) to one request is not evidence that the upstream is down: a
// registry answers 500 for some references (a layer digest asked for as a manifest), and any
// client could send those. When error answers reach the threshold, the probe (GET /v2/) decides:
// the breaker opens only if it fails too.

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
  /** Error answers (5xx, 429) among the consecutive failures: they open only once confirmed. */
  #errorAnswers = 0;
  #confirming = false;
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
    this.#errorAnswers = 0;
    if (this.#state !== 'closed') this.#close('upstream answered');
  }

  /** No answer at all: refused, reset, timed out. */
  recordFailure(reason: string): void {
    this.#lastFailure = { at: Date.now(), reason };
    this.#failures++;
    if (this.#state !== 'closed' || this.#failures < this.#options.failureThreshold) return;
    if (this.#errorAnswers === 0) this.#open(`${this.#failures} consecutive failures, last: ${reason}`);
    else this.#confirm(reason);
  }

  /** An answer that says "cannot serve this now" (5xx, 429): counted, but opens only if the probe fails. */
  recordErrorAnswer(reason: string): void {
    this.#errorAnswers++;
    this.recordFailure(reason);
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

  /** Asks the probe whether the whole upstream is failing, once at a time. */
  #confirm(reason: string): void {
    if (this.#confirming || this.#stopped) return;
    this.#confirming = true;
    const streak = this.#failures;
    void this.#options
      .probe()
      .catch(() => false)
      .then((alive) => {
        this.#confirming = false;
        if (this.#state !== 'closed' || this.#stopped) return;
        if (alive) {
          // Request-specific errors: the upstream itself answers. Start counting afresh.
          this.#failures = 0;
          this.#errorAnswers = 0;
          return;
        }
        this.#open(`${streak} consecutive failures and the probe failed, last: ${reason}`);
      });
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
    this.#errorAnswers = 0;
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
