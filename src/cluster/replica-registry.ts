// Which replicas share this cache, for the status page: each replica writes a heartbeat with
// its address and a few figures to one Redis hash every few seconds (one key: it works on
// Cluster too), and reads them all back when asked. A replica silent for 3 beats is shown as
// gone; one silent for an hour is dropped from the hash.
import type { Cluster, Redis } from 'ioredis';

export interface ReplicaFigures {
  readonly servedBytes: number;
  readonly servedFromCacheBytes: number;
  readonly upstreamBytes: number;
  readonly fillsInFlight: number;
}

export interface ReplicaBeat {
  readonly name: string;
  readonly url: string;
  readonly version: string;
  readonly startedAt: string;
  readonly seenAt: string;
  readonly figures: ReplicaFigures;
}

export interface ReplicaView extends ReplicaBeat {
  readonly alive: boolean;
  readonly self: boolean;
}

const BEAT_MS = 5000;
const FORGET_MS = 3600 * 1000;

export class ReplicaRegistry {
  readonly #redis: Redis | Cluster;
  readonly #key: string;
  readonly #me: { name: string; url: string; version: string; startedAt: string };
  readonly #figures: () => Promise<ReplicaFigures>;
  readonly #timer: NodeJS.Timeout;

  constructor(deps: { redis: Redis | Cluster; keyPrefix: string; me: { name: string; url: string; version: string; startedAt: number }; figures: () => Promise<ReplicaFigures> }) {
    this.#redis = deps.redis;
    this.#key = `${deps.keyPrefix}replicas`;
    this.#me = { ...deps.me, startedAt: new Date(deps.me.startedAt).toISOString() };
    this.#figures = deps.figures;
    this.#timer = setInterval(() => void this.beat(), BEAT_MS);
    this.#timer.unref();
    void this.beat();
  }

  /** Writes this replica's heartbeat now; Redis away: the next beat tries again. */
  async beat(): Promise<void> {
    try {
      const beat: ReplicaBeat = { ...this.#me, seenAt: new Date().toISOString(), figures: await this.#figures() };
      await this.#redis.hset(this.#key, this.#me.name, JSON.stringify(beat));
    } catch {
      // Shown on the status page as this replica's beat getting old.
    }
  }

  /** Every replica that beat within the last hour, this one first; [] when Redis does not answer. */
  async list(now = Date.now()): Promise<ReplicaView[]> {
    let all: Record<string, string>;
    try {
      all = await this.#redis.hgetall(this.#key);
    } catch {
      return [];
    }
    const views: ReplicaView[] = [];
    for (const [name, text] of Object.entries(all)) {
      const beat = parseBeat(text);
      const age = beat ? now - Date.parse(beat.seenAt) : Infinity;
      if (!beat || age > FORGET_MS) {
        void this.#redis.hdel(this.#key, name).catch(() => undefined);
        continue;
      }
      views.push({ ...beat, alive: age <= 3 * BEAT_MS, self: name === this.#me.name });
    }
    return views.sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name));
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

function parseBeat(text: string): ReplicaBeat | undefined {
  try {
    const beat = JSON.parse(text) as ReplicaBeat;
    return typeof beat.name === 'string' && typeof beat.seenAt === 'string' && typeof beat.figures === 'object' ? beat : undefined;
  } catch {
    return undefined;
  }
}
