// The access log: one JSON line per answered request, in the shape of every other pino line
// (level, time, the logger's bindings, the fields, msg), written to the logger's own stream.
// The line is put together here rather than by logger.info: the fields are always these, none
// holds a secret (so the redaction pass pino runs over every object is not needed), and at tens
// of thousands of requests a second pino's generic object walk and redaction cost more than the
// rest of a cached manifest's answer (docs/benchmarks.md).
import type { DestinationStream, Logger } from 'pino';
import { logBindings, logStream } from '../logger.ts';

export interface AccessLogFields {
  readonly reqId: string;
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly cache: string | undefined;
  readonly bytes: number;
  readonly ms: number;
  readonly upstream: string | undefined;
  readonly completed: boolean;
  readonly userAgent: string | undefined;
  readonly identity: string | undefined;
  readonly client: string | undefined;
  readonly clientCN: string | undefined;
}

const INFO = 30;

// Printable ASCII but the quote and the backslash: what JSON.stringify leaves as it is.
const NEEDS_NO_ESCAPE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * JSON.stringify(s), exactly, at half its cost for the strings a line mostly holds (request ids,
 * paths, addresses): they need no escaping, so the quotes are added around them as they are.
 */
export function jsonString(s: string): string {
  return NEEDS_NO_ESCAPE.test(s) ? `"${s}"` : JSON.stringify(s);
}

export class AccessLog {
  /** False below level info: callers skip building the fields at all. */
  readonly enabled: boolean;
  readonly #stream: DestinationStream;
  /** The logger's bindings as pino keeps them, ready to splice: `,"service":"wharf","thread":1`. */
  readonly #bindings: string;
  readonly #clock: IsoClock = new IsoClock();
  readonly #answer = new AnswerFields();
  readonly #asker = new AskerFields();

  constructor(logger: Logger) {
    this.enabled = logger.isLevelEnabled('info');
    this.#stream = logStream(logger);
    this.#bindings = logBindings(logger);
  }

  write(f: AccessLogFields): void {
    if (!this.enabled) return;
    this.#stream.write(`{"level":${INFO},"time":"${this.#clock.now()}"${this.#bindings},"reqId":${jsonString(f.reqId)}${this.#answer.of(f)},"ms":${f.ms}${this.#asker.of(f)}`);
  }
}

// The two runs of fields around "ms" that repeat from line to line: a client asking for the same
// tag again and again gets the same answer, from the same connection. Each is remembered as the
// text it was last made into and made again only when a field differs, which saves most of a
// line's escaping and joining under a steady load.

/** method, url, status, cache, bytes: `,"method":...,"bytes":N`. Every string as JSON (a client or an upstream chose most of them). */
class AnswerFields {
  #method = '';
  #url = '';
  #status = -1;
  #cache: string | undefined;
  #bytes = -1;
  #text = '';

  of(f: AccessLogFields): string {
    if (f.method === this.#method && f.url === this.#url && f.status === this.#status && f.cache === this.#cache && f.bytes === this.#bytes) return this.#text;
    this.#method = f.method;
    this.#url = f.url;
    this.#status = f.status;
    this.#cache = f.cache;
    this.#bytes = f.bytes;
    let text = `,"method":${jsonString(f.method)},"url":${jsonString(f.url)},"status":${f.status}`;
    if (f.cache !== undefined) text += `,"cache":${jsonString(f.cache)}`;
    this.#text = `${text},"bytes":${f.bytes}`;
    return this.#text;
  }
}

/** upstream, completed, userAgent, identity, client, clientCN, and the line's end. */
class AskerFields {
  #upstream: string | undefined = '';
  #completed = false;
  #userAgent: string | undefined;
  #identity: string | undefined;
  #client: string | undefined;
  #clientCN: string | undefined;
  #text = '';

  of(f: AccessLogFields): string {
    if (
      f.upstream === this.#upstream &&
      f.completed === this.#completed &&
      f.userAgent === this.#userAgent &&
      f.identity === this.#identity &&
      f.client === this.#client &&
      f.clientCN === this.#clientCN
    ) {
      return this.#text;
    }
    this.#upstream = f.upstream;
    this.#completed = f.completed;
    this.#userAgent = f.userAgent;
    this.#identity = f.identity;
    this.#client = f.client;
    this.#clientCN = f.clientCN;
    let text = f.upstream !== undefined ? `,"upstream":${jsonString(f.upstream)}` : '';
    text += `,"completed":${f.completed}`;
    if (f.userAgent !== undefined) text += `,"userAgent":${jsonString(f.userAgent)}`;
    if (f.identity !== undefined) text += `,"identity":${jsonString(f.identity)}`;
    if (f.client !== undefined) text += `,"client":${jsonString(f.client)}`;
    if (f.clientCN !== undefined) text += `,"clientCN":${jsonString(f.clientCN)}`;
    this.#text = `${text},"msg":"request"}\n`;
    return this.#text;
  }
}

/** ISO time as pino's isoTime writes it, made once per millisecond rather than once per line. */
class IsoClock {
  #ms = -1;
  #text = '';

  now(): string {
    const ms = Date.now();
    if (ms !== this.#ms) {
      this.#ms = ms;
      this.#text = new Date(ms).toISOString();
    }
    return this.#text;
  }
}
