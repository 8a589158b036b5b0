// One upstream fill per blob between replicas: before a replica fetches a blob from its
// upstream it claims the digest's lease in Redis. The winner fills (and publishes to S3); the
// others stream the bytes from it (peer-client.ts). The lease is an efficiency lock, not a
// correctness one: a lost or lapsed lease costs at most a second download, never a wrong byte,
// since every replica verifies the digest of what it keeps. Redis away: no lease, each fills alone.
//
// Keys share a hash tag ({fill:<digest>}) so the scripts run on Redis Cluster too:
//   <prefix>{fill:<digest>}:lease  "<fence>|<replica>|<peer url>", with a TTL, extended while the fill runs
//   <prefix>{fill:<digest>}:fence  a counter: each lease gets a higher fence than the one before
import type { Logger } from 'pino';
import type { Cluster, Redis } from 'ioredis';

export interface LeaseHolder {
  readonly fence: number;
  readonly replica: string;
  /** Where the holder's peer endpoint is. */
  readonly url: string;
}

export interface HeldLease {
  readonly fence: number;
  /** Gives the lease up (only if it is still ours). Never throws. */
  release(): Promise<void>;
}

export type LeaseClaim =
  | { readonly kind: 'won'; readonly lease: HeldLease }
  | { readonly kind: 'held'; readonly holder: LeaseHolder }
  /** Redis did not answer: fill alone. */
  | { readonly kind: 'unavailable'; readonly why: string };

export interface FillLeases {
  claim(digest: string): Promise<LeaseClaim>;
}

export interface Me {
  readonly replica: string;
  readonly url: string;
}

// Fences only need to grow across leases that could overlap; a day bounds the counters' life.
const FENCE_TTL_MS = 24 * 3600 * 1000;
const RELEASE_WAIT_MS = 1000;
const CLAIM_WAIT_MS = 300;

const CLAIM = `
local held = redis.call('GET', KEYS[1])
if held then return {0, held} end
local fence = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local value = fence .. '|' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value}`;

const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export class RedisFillLeases implements FillLeases {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #me: Me;
  readonly #ttlMs: number;
  readonly #log: Logger;
  /** Told when a held lease was found taken (it lapsed: this replica stalled past its TTL). */
  readonly #onLost: () => void;

  constructor(deps: { redis: Redis | Cluster; keyPrefix: string; me: Me; ttlMs: number; logger: Logger; onLost?: () => void }) {
    this.#redis = deps.redis;
    this.#prefix = deps.keyPrefix;
    this.#me = deps.me;
    this.#ttlMs = deps.ttlMs;
    this.#log = deps.logger;
    this.#onLost = deps.onLost ?? (() => undefined);
  }

  async claim(digest: string): Promise<LeaseClaim> {
    const lease = this.#key(digest, 'lease');
    let answer: [number, string];
    // The lease saves downloads; it must not cost a client more than a moment's wait: a Redis
    // that hangs is given up on sooner than the store's command deadline. Should the claim land
    // after all, the lease lapses unextended, and the others follow this fill meanwhile.
    let wait: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<never>((_, reject) => (wait = setTimeout(() => reject(new Error(`no answer within ${CLAIM_WAIT_MS} ms`)), CLAIM_WAIT_MS)));
    try {
      const claimed = this.#redis.eval(CLAIM, 2, lease, this.#key(digest, 'fence'), `${this.#me.replica}|${this.#me.url}`, this.#ttlMs, FENCE_TTL_MS);
      claimed.catch(() => undefined);
      answer = (await Promise.race([claimed, gaveUp])) as [number, string];
    } catch (err) {
      return { kind: 'unavailable', why: err instanceof Error ? err.message : String(err) };
    } finally {
      clearTimeout(wait);
    }
    const [won, value] = answer;
    const holder = parseHolder(value);
    if (!holder) return { kind: 'unavailable', why: `unreadable lease ${JSON.stringify(value)}` };
    if (won !== 1) return { kind: 'held', holder };
    return { kind: 'won', lease: this.#hold(digest, lease, value, holder.fence) };
  }

  /** Extends the lease while the fill runs, at a third of its TTL, until released. */
  #hold(digest: string, key: string, value: string, fence: number): HeldLease {
    let released = false;
    const timer = setInterval(() => {
      this.#redis.eval(EXTEND, 1, key, value, this.#ttlMs).then(
        (kept) => {
          if (kept === 1 || released) return;
          clearInterval(timer);
          this.#onLost();
          this.#log.warn({ digest, fence }, 'fill lease lapsed while filling; another replica may fetch the blob too');
        },
        // Redis away for a moment: the next tick tries again; if the lease lapses meanwhile, so be it.
        () => undefined,
      );
    }, Math.max(250, Math.floor(this.#ttlMs / 3)));
    timer.unref();
    return {
      fence,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        // Left to lapse if Redis does not answer, and never waited on for longer than a moment:
        // the fill behind it has ended and its clients are done.
        let wait: NodeJS.Timeout | undefined;
        const gaveUp = new Promise<void>((resolve) => (wait = setTimeout(resolve, RELEASE_WAIT_MS)));
        await Promise.race([this.#redis.eval(RELEASE, 1, key, value).catch(() => undefined), gaveUp]);
        clearTimeout(wait);
      },
    };
  }

  #key(digest: string, part: 'lease' | 'fence'): string {
    return `${this.#prefix}{fill:${digest}}:${part}`;
  }
}

/** "<fence>|<replica>|<url>"; the URL may itself hold no "|" (it is an http(s) URL). */
export function parseHolder(value: string): LeaseHolder | undefined {
  const [fence, replica, url, ...rest] = value.split('|');
  if (rest.length > 0 || !fence || !replica || !url || !/^\d+$/.test(fence)) return undefined;
  return { fence: Number(fence), replica, url };
}
