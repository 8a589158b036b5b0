// What wharf lets itself ask of one upstream (upstreams[].limits): at most maxConcurrent
// requests in flight (a request holds its turn until its body is read or dropped) and at most
// requestsPerSecond started (a token bucket holding `burst` tokens), so that a cold cluster
// start cannot trip Docker Hub's rate limit. Requests past the caps wait in line, first come
// first served, each for at most the wait it was given; one that waits longer is turned away
// (a cached copy is then served stale, or the client is told to retry). Unset caps: no wait.

export interface UpstreamLimits {
  readonly maxConcurrent?: number | undefined;
  readonly requestsPerSecond?: number | undefined;
  /** Requests that may start at once after a quiet spell (default: one second's worth, at least 1). */
  readonly burst?: number | undefined;
}

/** A request waited in line for longer than it may. */
export class UpstreamBusyError extends Error {
  override readonly name = 'UpstreamBusyError';
}

interface Waiter {
  readonly grant: (release: () => void) => void;
  readonly refuse: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export class UpstreamLimiter {
  readonly #maxConcurrent: number;
  readonly #perSecond: number | undefined;
  readonly #burst: number;
  readonly #now: () => number;
  #inFlight = 0;
  #tokens: number;
  #refilledAt: number;
  #queue: Waiter[] = [];
  #refillTimer: NodeJS.Timeout | undefined;

  constructor(limits: UpstreamLimits, now: () => number = Date.now) {
    this.#maxConcurrent = limits.maxConcurrent ?? Infinity;
    this.#perSecond = limits.requestsPerSecond;
    this.#burst = limits.burst ?? Math.max(1, Math.ceil(limits.requestsPerSecond ?? 1));
    this.#now = now;
    this.#tokens = this.#burst;
    this.#refilledAt = now();
  }

  /** Whether any cap is set (none: acquire() never waits). */
  get limits(): boolean {
    return this.#maxConcurrent !== Infinity || this.#perSecond !== undefined;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /** A turn: resolves with its release (call it once, when the request is over); waits at most maxWaitMs. */
  acquire(maxWaitMs: number): Promise<() => void> {
    if (this.#queue.length === 0 && this.#canStart()) return Promise.resolve(this.#start());
    return new Promise((grant, refuse) => {
      const waiter: Waiter = { grant, refuse, timer: undefined };
      waiter.timer = setTimeout(() => {
        this.#queue = this.#queue.filter((w) => w !== waiter);
        refuse(new UpstreamBusyError(`waited ${maxWaitMs} ms for a turn (${this.#inFlight} in flight, ${this.#queue.length} waiting)`));
      }, maxWaitMs);
      this.#queue.push(waiter);
      this.#scheduleRefill();
    });
  }

  #canStart(): boolean {
    this.#refill();
    return this.#inFlight < this.#maxConcurrent && (this.#perSecond === undefined || this.#tokens >= 1);
  }

  #start(): () => void {
    this.#inFlight++;
    if (this.#perSecond !== undefined) this.#tokens -= 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight--;
      this.#next();
    };
  }

  #next(): void {
    while (this.#queue.length > 0 && this.#canStart()) {
      const waiter = this.#queue.shift()!;
      clearTimeout(waiter.timer);
      waiter.grant(this.#start());
    }
    this.#scheduleRefill();
  }

  #refill(): void {
    if (this.#perSecond === undefined) return;
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#perSecond);
    this.#refilledAt = now;
  }

  /** When waiters wait for a token (not a slot), wake them as the next one comes. */
  #scheduleRefill(): void {
    if (this.#refillTimer || this.#queue.length === 0 || this.#perSecond === undefined) return;
    if (this.#inFlight >= this.#maxConcurrent || this.#tokens >= 1) return;
    const ms = Math.ceil(((1 - this.#tokens) / this.#perSecond) * 1000);
    this.#refillTimer = setTimeout(() => {
      this.#refillTimer = undefined;
      this.#next();
    }, Math.max(1, ms));
  }

  /** Turns every waiter away (shutdown). */
  close(): void {
    clearTimeout(this.#refillTimer);
    for (const w of this.#queue.splice(0)) {
      clearTimeout(w.timer);
      w.refuse(new UpstreamBusyError('wharf is stopping'));
    }
  }
}
