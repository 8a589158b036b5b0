// Tells the blob service when the disk cannot take blobs (full, read-only, no permission), so
// that requests pass through from the upstream uncached instead of failing one fill after
// another. After a pause it lets the next fill try the disk again.
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.ts';

const DISK_ERROR_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO', 'EFBIG', 'EMFILE', 'ENFILE']);
const DEFAULT_BYPASS_MS = 30_000;

export class CacheWriteGuard {
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #bypassMs: number;
  #bypassUntil = 0;

  constructor(deps: { logger: Logger; metrics: Metrics; bypassMs?: number }) {
    this.#log = deps.logger;
    this.#metrics = deps.metrics;
    this.#bypassMs = deps.bypassMs ?? DEFAULT_BYPASS_MS;
  }

  /** Whether blobs should skip the cache now. */
  get bypassing(): boolean {
    return Date.now() < this.#bypassUntil;
  }

  /** Counts one blob served without caching. */
  countBypass(reason: string): void {
    this.#metrics.blobCacheBypassed.inc({ reason });
  }

  /** Looks at a failed write; a disk error starts a bypass period. Returns whether it was one. */
  recordWriteError(err: unknown): boolean {
    const code = diskErrorCode(err);
    if (!code) return false;
    if (!this.bypassing) {
      this.#log.error({ code, err: (err as Error).message, retryInMs: this.#bypassMs }, 'blob cache cannot write; passing blobs through uncached');
    }
    this.#bypassUntil = Date.now() + this.#bypassMs;
    return true;
  }
}

export function diskErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err) || typeof err.code !== 'string') return undefined;
  return DISK_ERROR_CODES.has(err.code) ? err.code : undefined;
}
