// Users from an htpasswd file, bcrypt only (what distribution accepts and `htpasswd -B`
// writes), reloaded when the file changes.
//
// Cost: a bcrypt check takes ~75 ms at cost 10 and ~300 ms at 12, and Basic auth sends the
// password with every request, so a many-layer pull would hash once per layer (the CPU sink
// caddy, traefik and rclone had). Successful checks are therefore remembered for a short while,
// keyed by an HMAC of user, password and stored hash under a per-process random key: the cache
// holds nothing that reveals a password, and a changed hash (a reload) misses by construction.
// Failures are never remembered. Checks of the same key already running are shared.
//
// Groups are not part of the file (Apache's group files are another format): they are passed
// in as a map of group -> member user names, which a config file can hold.
import { verify as bcryptVerify } from '@node-rs/bcrypt';
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { HmacSha256 } from './hmac-sha256.ts';
import { readAuthFile } from './read-auth-file.ts';
import { WatchedFile } from './watched-file.ts';

export interface HtpasswdOptions {
  readonly path: string;
  /** Group name -> the user names in it. Users absent from the file are allowed (added later). */
  readonly groups?: Readonly<Record<string, readonly string[]>>;
  /** How long a successful check is remembered; default 60 s. */
  readonly cacheTtlMs?: number;
  /** How many successful checks are remembered; default 1000. */
  readonly cacheMax?: number;
  /** Quiet time after a change before the file is re-read (editors write in steps); default 100 ms. */
  readonly reloadDelayMs?: number;
}

export interface HtpasswdHooks {
  /** A changed file was loaded; `users` is how many it holds. */
  readonly onReload?: (users: number) => void;
  /** A changed file could not be loaded; the users from before stay in force. */
  readonly onReloadError?: (error: Error) => void;
  /** The bcrypt check; by default @node-rs/bcrypt's, on the libuv pool, off the event loop. */
  readonly compare?: (password: string, hash: string) => Promise<boolean>;
}

/** The file cannot be used: unreadable, or a line that is not `user:bcrypt-hash`. */
export class HtpasswdError extends Error {
  readonly path: string;
  /** 1-based line number, when a line is at fault. */
  readonly line: number | undefined;

  constructor(path: string, line: number | undefined, why: string, options?: { cause?: unknown }) {
    super(line === undefined ? `htpasswd ${path}: ${why}` : `htpasswd ${path} line ${line}: ${why}`, options);
    this.name = 'HtpasswdError';
    this.path = path;
    this.line = line;
  }
}

const BCRYPT = /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;
// Any well-formed hash costs the full work factor to check; this one matches no password
// anyone types. Its cost is replaced by the file's usual cost, so an unknown user takes as long
// as a known one with a wrong password (no timing oracle for which users exist).
const DUMMY_SALT_AND_HASH = 'eaLcbysIw3daK4kZtjB7r.RkjrZg5Ym5dp/2GFn4UXa2/86dEAkQ.';
const DEFAULT_COST = '10';
const NO_GROUPS: readonly string[] = Object.freeze([]);

interface Loaded {
  readonly text: string;
  readonly users: ReadonlyMap<string, string>;
  readonly dummyHash: string;
}

export class HtpasswdUsers {
  readonly #path: string;
  readonly #hooks: HtpasswdHooks;
  readonly #compare: (password: string, hash: string) => Promise<boolean>;
  readonly #groups: ReadonlyMap<string, readonly string[]>;
  readonly #hmac = new HmacSha256(randomBytes(32));
  readonly #verified: LRUCache<string, true>;
  readonly #inFlight = new Map<string, Promise<boolean>>();
  readonly #reloadDelayMs: number;
  #loaded: Loaded;
  #file: WatchedFile | undefined;

  private constructor(options: HtpasswdOptions, hooks: HtpasswdHooks, loaded: Loaded) {
    this.#path = options.path;
    this.#hooks = hooks;
    this.#compare = hooks.compare ?? bcryptVerify;
    this.#groups = invertGroups(options.path, options.groups ?? {});
    this.#verified = new LRUCache({ max: options.cacheMax ?? 1000, ttl: options.cacheTtlMs ?? 60_000 });
    this.#reloadDelayMs = options.reloadDelayMs ?? 100;
    this.#loaded = loaded;
  }

  /** Loads the file (a bad file is an error here) and watches it for changes until close(). */
  static async open(options: HtpasswdOptions, hooks: HtpasswdHooks = {}): Promise<HtpasswdUsers> {
    const users = new HtpasswdUsers(options, hooks, await load(options.path));
    users.#watch();
    return users;
  }

  get size(): number {
    return this.#loaded.users.size;
  }

  /** User names are compared exactly: no case folding, no trimming. */
  async verify(user: string, password: string): Promise<boolean> {
    const { users, dummyHash } = this.#loaded;
    const hash = users.get(user);
    if (hash === undefined) {
      await this.#compare(password, dummyHash).catch(() => false);
      return false;
    }
    const key = this.#cacheKey(user, password, hash);
    if (this.#verified.get(key) === true) return true;
    const running = this.#inFlight.get(key);
    if (running !== undefined) return running;
    const check = this.#compare(password, hash)
      .then(
        (ok) => {
          if (ok) this.#verified.set(key, true);
          return ok;
        },
        () => false,
      )
      .finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, check);
    return check;
  }

  groupsOf(user: string): readonly string[] {
    return this.#groups.get(user) ?? NO_GROUPS;
  }

  close(): void {
    this.#file?.close();
  }

  #cacheKey(user: string, password: string, hash: string): string {
    // Length-prefixed, so no two (user, password, hash) triples share an input.
    const message = `${Buffer.byteLength(user)}:${user}${Buffer.byteLength(password)}:${password}${hash}`;
    return this.#hmac.digest(Buffer.from(message, 'utf8'));
  }

  #watch(): void {
    this.#file = new WatchedFile(
      {
        path: this.#path,
        delayMs: this.#reloadDelayMs,
        apply: (text) => {
          this.#loaded = parse(this.#path, text);
          this.#hooks.onReload?.(this.#loaded.users.size);
        },
        onError: (err) => this.#hooks.onReloadError?.(err),
        fail: (why, cause) => new HtpasswdError(this.#path, undefined, why, { cause }),
      },
      this.#loaded.text,
    );
  }
}

/** Parses htpasswd text: `user:hash` lines, '#' comments and blank lines. */
export function parseHtpasswd(path: string, text: string): ReadonlyMap<string, string> {
  return parse(path, text).users;
}

async function load(path: string): Promise<Loaded> {
  return parse(path, await readAuthFile(path, (why, cause) => new HtpasswdError(path, undefined, why, { cause })));
}

function parse(path: string, text: string): Loaded {
  const users = new Map<string, string>();
  const lineOf = new Map<string, number>();
  const costs = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    const number = i + 1;
    if (line.trim().length === 0 || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon === -1) throw new HtpasswdError(path, number, 'expected user:hash');
    const user = line.slice(0, colon);
    // Messages name the line, never the hash (nor the user: errors end up in logs).
    const hash = line.slice(colon + 1).trim();
    if (user.length === 0) throw new HtpasswdError(path, number, 'empty user name');
    if (user.trim() !== user) throw new HtpasswdError(path, number, 'user name starts or ends with whitespace');
    const match = BCRYPT.exec(hash);
    if (match === null) {
      throw new HtpasswdError(path, number, 'not a bcrypt hash ($2y$, $2a$ or $2b$); only bcrypt is accepted: create it with `htpasswd -B`');
    }
    const earlier = lineOf.get(user);
    if (earlier !== undefined) throw new HtpasswdError(path, number, `user already defined on line ${earlier}`);
    users.set(user, hash);
    lineOf.set(user, number);
    costs.set(match[1]!, (costs.get(match[1]!) ?? 0) + 1);
  }
  return { text, users, dummyHash: `$2b$${usualCost(costs)}$${DUMMY_SALT_AND_HASH}` };
}

function usualCost(costs: ReadonlyMap<string, number>): string {
  let best = DEFAULT_COST;
  let count = 0;
  for (const [cost, n] of costs) {
    if (n > count) {
      best = cost;
      count = n;
    }
  }
  return best;
}

function invertGroups(path: string, groups: Readonly<Record<string, readonly string[]>>): ReadonlyMap<string, readonly string[]> {
  const byUser = new Map<string, string[]>();
  for (const [group, members] of Object.entries(groups)) {
    if (group.length === 0) throw new HtpasswdError(path, undefined, 'groups: empty group name');
    for (const user of members) {
      const list = byUser.get(user) ?? [];
      if (!list.includes(group)) list.push(group);
      byUser.set(user, list);
    }
  }
  return new Map([...byUser].map(([user, list]) => [user, Object.freeze(list)]));
}

