// Tells the blob service when the disk cannot take blobs (full, read-only, no permission), so
// that requests pass through from the upstream uncached instead of failing one fill after
// another. Free space is checked before a fill starts (minus what running fills will still
// write), because a fill that runs out of space mid-way can only cut its clients off. After a
// write error it pauses caching for a while, then lets the next fill try the disk again.
import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics.ts';

const DISK_ERROR_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO', 'EFBIG', 'EMFILE', 'ENFILE']);
const DEFAULT_BYPASS_MS = 30_000;

// Room kept free beyond the blob itself (temp files, the manifest store, logs).
const HEADROOM_BYTES = 1 << 20;

export class CacheWriteGuard {
  readonly #dataDir: string;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #bypassMs: number;
  #bypassUntil = 0;
  #lastFullWarning = 0;

  constructor(deps: { dataDir: string; logger: Logger; metrics: Metrics; bypassMs?: number }) {
    this.#dataDir = deps.dataDir;
    this.#log = deps.logger;
    this.#metrics = deps.metrics;
    this.#bypassMs = deps.bypassMs ?? DEFAULT_BYPASS_MS;
  }

  /**
   * Whether the disk has room for a blob of `size` bytes besides the `pending` bytes that
   * running fills have yet to write. An unknown size or free space cannot be checked: the
   * write itself will find out.
   */
  async hasRoomFor(size: number | undefined, pending: number): Promise<boolean> {
    if (size === undefined) return true;
    let free: number;
    try {
      const fs = await statfs(this.#dataDir);
      free = fs.bavail * fs.bsize;
    } catch {
      return true;
    }
    if (free - pending >= size + HEADROOM_BYTES) return true;
    // One warning per pause, not one per blob; the metric counts every one.
    if (Date.now() - this.#lastFullWarning > this.#bypassMs) {
      this.#log.warn({ size, free, pending }, 'not enough disk space to cache blobs; passing them through');
      this.#lastFullWarning = Date.now();
    }
    return false;
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
