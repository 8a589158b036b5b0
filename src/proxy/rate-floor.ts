// The slowest an upstream blob body may arrive. The idle timeout alone lets an upstream that
// sends a few bytes just inside it hold a fill, and every client following it, for as long as
// it likes. A floor counts the bytes its reader hands it and, at each window boundary (one
// interval timer per body, nothing per chunk but an addition), cuts the body when the window
// brought fewer than bytesPerSecond * windowMs. Windows in which the reader itself held the body
// back (a disk write, a slow client) are not held against the upstream.

export interface MinRate {
  /** 0: no minimum. */
  readonly bytesPerSecond: number;
  readonly windowMs: number;
}

export class SlowBodyError extends Error {
  constructor(got: number, rate: MinRate) {
    super(`upstream body too slow: ${got} bytes in ${rate.windowMs} ms, below the minimum of ${rate.bytesPerSecond} bytes/s`);
    this.name = 'SlowBodyError';
  }
}

export class RateFloor {
  readonly #rate: MinRate;
  readonly #perWindow: number;
  readonly #onTooSlow: (err: SlowBodyError) => void;
  readonly #timer: NodeJS.Timeout;
  #received = 0;
  #atWindowStart = 0;
  #paused = false;
  #pausedInWindow = false;

  /** Starts the first window now; onTooSlow is called at most once, and the floor then stops. */
  constructor(rate: MinRate, onTooSlow: (err: SlowBodyError) => void) {
    this.#rate = rate;
    this.#perWindow = Math.ceil((rate.bytesPerSecond * rate.windowMs) / 1000);
    this.#onTooSlow = onTooSlow;
    this.#timer = setInterval(() => this.#check(), rate.windowMs);
    this.#timer.unref();
  }

  received(bytes: number): void {
    this.#received += bytes;
  }

  /** The reader stops reading for reasons of its own (backpressure): not the upstream's fault. */
  pause(): void {
    this.#paused = true;
    this.#pausedInWindow = true;
  }

  resume(): void {
    this.#paused = false;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #check(): void {
    const got = this.#received - this.#atWindowStart;
    this.#atWindowStart = this.#received;
    const excused = this.#pausedInWindow;
    this.#pausedInWindow = this.#paused;
    if (excused || got >= this.#perWindow) return;
    this.stop();
    this.#onTooSlow(new SlowBodyError(got, this.#rate));
  }
}

/** A floor for one body, or undefined when the rate sets no minimum. */
export function rateFloor(rate: MinRate, onTooSlow: (err: SlowBodyError) => void): RateFloor | undefined {
  return rate.bytesPerSecond > 0 ? new RateFloor(rate, onTooSlow) : undefined;
}

/** The blob minimum of an upstream's timeouts. */
export function blobMinRate(timeouts: { readonly blobMinBytesPerSecond: number; readonly blobRateWindowMs: number }): MinRate {
  return { bytesPerSecond: timeouts.blobMinBytesPerSecond, windowMs: timeouts.blobRateWindowMs };
}
