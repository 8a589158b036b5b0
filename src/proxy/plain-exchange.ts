// Blob GETs to a plain-HTTP upstream, on connections of wharf's own (plain-connection.ts) rather
// than undici's. undici hands a body over as a stream of fresh 64 KiB chunks, and receiving a
// fill so cost about 0.8 CPU-seconds a GB here, more than hashing it; these connections read
// 1 MiB at a time into one buffer and hand each read to the fill as it is (plain-body.ts), at a
// third of that (docs/benchmarks.md). TLS sockets cannot be read so: HTTPS stays with undici.
//
// Kept-alive connections are reused per host. A reused one the server had closed before it
// answered is tried once more on a fresh connection, as undici's retry does.
import type { LookupFunction } from 'node:net';
import { PlainConnection, StaleConnectionError, type PlainTimeouts } from './plain-connection.ts';
import type { Hop, HopAnswer } from './upstream-transport.ts';
import { PlainBody } from './plain-body.ts';

/** Idle connections kept per host, and for how long: undici's keep-alive default. */
const IDLE_PER_HOST = 8;
const IDLE_MS = 4_000;
const READ_BYTES = 1 << 20;

/** A blob's own GET (not a redirect's target elsewhere, which may be anything) over plain HTTP. */
export function isPlainBlobGet(hop: Hop): boolean {
  return hop.method === 'GET' && hop.body === undefined && hop.url.protocol === 'http:' && /\/v2\/.+\/blobs\/[^/]+$/.test(hop.url.pathname);
}

export class PlainExchanges {
  readonly #timeouts: PlainTimeouts;
  readonly #lookup: LookupFunction;
  readonly #idle = new Map<string, PlainConnection[]>();
  readonly #idleTimers = new WeakMap<PlainConnection, NodeJS.Timeout>();
  /** Shared by every connection here: each read is handed on before the next one lands. */
  #readBuffer: Buffer | undefined;
  #closed = false;

  constructor(timeouts: PlainTimeouts, lookup: LookupFunction) {
    this.#timeouts = timeouts;
    this.#lookup = lookup;
  }

  /** One GET; a 200 body of known length cut by a reset is resumed once, as undici's retry does. */
  async exchange(hop: Hop): Promise<HopAnswer> {
    const answer = await this.#send(hop);
    const length = answer.headers['content-length'];
    if (answer.statusCode === 200 && typeof length === 'string' && answer.body instanceof PlainBody) {
      answer.body.resumeWith((from) => this.#rest(hop, from, Number(length), strongEtag(answer.headers.etag)));
    }
    return answer;
  }

  /** The body from `from` to its end, from a 206 that says exactly that (and is the same entity). */
  async #rest(hop: Hop, from: number, total: number, etag: string | undefined): Promise<PlainBody> {
    const headers: Record<string, string> = { ...hop.headers, range: `bytes=${from}-${total - 1}` };
    if (etag !== undefined) headers['if-match'] = etag;
    const answer = await this.#send({ ...hop, headers });
    const body = answer.body as unknown as PlainBody;
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(answer.headers['content-range'] ?? ''));
    const whole = range !== null && Number(range[1]) === from && Number(range[2]) === total - 1 && (range[3] === '*' || Number(range[3]) === total);
    const sameEntity = etag === undefined || answer.headers.etag === etag;
    if (answer.statusCode !== 206 || !whole || !sameEntity || answer.headers['content-length'] !== String(total - from)) {
      body.destroy();
      throw new Error(`the rest of the body was not what was asked (HTTP ${answer.statusCode})`);
    }
    return body;
  }

  async #send(hop: Hop): Promise<HopAnswer> {
    const idle = this.#takeIdle(hop.url.host);
    if (idle) {
      try {
        return await idle.send(hop);
      } catch (err) {
        if (!(err instanceof StaleConnectionError)) throw err;
      }
    }
    const fresh = new PlainConnection(hop.url, {
      timeouts: this.#timeouts,
      lookup: this.#lookup,
      readBuffer: (this.#readBuffer ??= Buffer.allocUnsafeSlow(READ_BYTES)),
      onReusable: (c) => this.#putIdle(c),
    });
    await fresh.opened(hop.signal);
    return fresh.send(hop);
  }

  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const c of list) c.destroy();
    this.#idle.clear();
  }

  #takeIdle(key: string): PlainConnection | undefined {
    const list = this.#idle.get(key);
    while (list && list.length > 0) {
      const c = list.pop()!;
      clearTimeout(this.#idleTimers.get(c));
      if (c.usable) return c;
    }
    return undefined;
  }

  #putIdle(c: PlainConnection): void {
    let list = this.#idle.get(c.key);
    if (!list) this.#idle.set(c.key, (list = []));
    if (this.#closed || list.length >= IDLE_PER_HOST) {
      c.destroy();
      return;
    }
    list.push(c);
    const timer = setTimeout(() => {
      const at = list.indexOf(c);
      if (at !== -1) list.splice(at, 1);
      c.destroy();
    }, IDLE_MS).unref();
    this.#idleTimers.set(c, timer);
  }
}

/** An ETag that names exact bytes (a weak one does not). */
function strongEtag(etag: string | string[] | undefined): string | undefined {
  return typeof etag === 'string' && !etag.startsWith('W/') ? etag : undefined;
}
