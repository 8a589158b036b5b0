// Keeps the blob cache within its budget: above cache.maxBytes it evicts least recently used
// blobs down to 90% of it, and while the disk has less than cache.minFreeBytes free it evicts
// until there is 10% more than that. Pinned images and blobs used in the last minute (a pull
// in progress) are never chosen; a reader that already opened a blob keeps reading it.
import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BlobStore } from './blob-store.ts';
import type { BlobIndex } from './blob-index.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Config } from '../config/load-config.ts';

export interface EvictionPlan {
  readonly reason: 'budget' | 'disk' | 'none';
  /** Bytes to free, and what was chosen for it (oldest use first). */
  readonly needBytes: number;
  readonly victims: ReadonlyArray<{ digest: string; size: number; lastUsed: number }>;
  /** Bytes that could not be freed because everything left is pinned or in use. */
  readonly shortBytes: number;
}

export interface EvictorOptions {
  readonly dataDir: string;
  readonly maxBytes: number | undefined;
  readonly minFreeBytes: number;
  /** Digests of pinned images' manifests and blobs, resolved when needed. */
  readonly pinned: () => Promise<ReadonlySet<string>>;
  /** Blobs used this recently are left alone. */
  readonly protectMs?: number;
}

const BUDGET_TARGET = 0.9;
const FREE_MARGIN = 1.1;
const DEFAULT_PROTECT_MS = 60_000;

export class Evictor {
  readonly #index: BlobIndex;
  readonly #store: BlobStore;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #options: EvictorOptions;
  #running: Promise<EvictionPlan> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: { index: BlobIndex; store: BlobStore; metrics: Metrics; logger: Logger }, options: EvictorOptions) {
    this.#index = deps.index;
    this.#store = deps.store;
    this.#metrics = deps.metrics;
    this.#log = deps.logger;
    this.#options = options;
  }

  /** What enforce() would evict now, without evicting (gc --dry-run). */
  async plan(): Promise<EvictionPlan> {
    const { maxBytes, minFreeBytes } = this.#options;
    const overBudget = maxBytes !== undefined && this.#index.bytes > maxBytes ? this.#index.bytes - Math.floor(maxBytes * BUDGET_TARGET) : 0;
    const free = minFreeBytes > 0 ? await freeBytes(this.#options.dataDir) : undefined;
    const diskNeed = free !== undefined && free < minFreeBytes ? Math.ceil(minFreeBytes * FREE_MARGIN) - free : 0;
    const needBytes = Math.max(overBudget, diskNeed);
    if (needBytes <= 0) return { reason: 'none', needBytes: 0, victims: [], shortBytes: 0 };
    const pinned = await this.#options.pinned();
    const recent = Date.now() - (this.#options.protectMs ?? DEFAULT_PROTECT_MS);
    const victims: Array<{ digest: string; size: number; lastUsed: number }> = [];
    let freed = 0;
    for (const blob of this.#index.oldestFirst()) {
      if (freed >= needBytes) break;
      if (blob.lastUsed > recent || pinned.has(blob.digest)) continue;
      victims.push(blob);
      freed += blob.size;
    }
    return { reason: overBudget >= diskNeed ? 'budget' : 'disk', needBytes, victims, shortBytes: Math.max(0, needBytes - freed) };
  }

  /** Evicts what plan() chooses; one run at a time, callers share it. */
  enforce(): Promise<EvictionPlan> {
    this.#running ??= this.#evict().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Resolves once no eviction pass is running: one under way is waited for, none is started. */
  async settled(): Promise<void> {
    await this.#running?.catch(() => undefined);
  }

  /** Checks the budget every intervalMs (disk space changes behind wharf's back too). */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.enforce().catch((err: unknown) => this.#log.error({ err: String(err) }, 'eviction failed')), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #evict(): Promise<EvictionPlan> {
    const plan = await this.plan();
    if (plan.reason === 'none') return plan;
    let freed = 0;
    for (const victim of plan.victims) {
      if (await this.#store.remove(victim.digest)) {
        freed += victim.size;
        this.#metrics.cacheEvictions.inc();
      }
      this.#index.removed(victim.digest);
    }
    const log = plan.shortBytes > 0 ? this.#log.warn.bind(this.#log) : this.#log.info.bind(this.#log);
    log({ reason: plan.reason, evicted: plan.victims.length, freedBytes: freed, shortBytes: plan.shortBytes }, plan.shortBytes > 0 ? 'cache over budget; the rest is pinned or in use' : 'evicted least recently used blobs');
    return plan;
  }
}

async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const fs = await statfs(dir);
    return fs.bavail * fs.bsize;
  } catch {
    return undefined;
  }
}

/** An evictor with the config's budget, keeping what `pinned` returns (see pinned-images.ts). */
export function evictorFromConfig(
  config: Pick<Config, 'dataDir' | 'cache'>,
  deps: { index: BlobIndex; store: BlobStore; metrics: Metrics; logger: Logger },
  pinned: () => Promise<ReadonlySet<string>>,
): Evictor {
  return new Evictor(deps, {
    dataDir: config.dataDir,
    maxBytes: config.cache.maxBytes,
    minFreeBytes: config.cache.minFreeBytes,
    pinned,
    protectMs: config.cache.evictionGraceSeconds * 1000,
  });
}
