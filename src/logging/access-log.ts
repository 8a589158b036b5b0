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

  constructor(logger: Logger) {
    this.enabled = logger.isLevelEnabled('info');
    this.#stream = logStream(logger);
    this.#bindings = logBindings(logger);
  }

  write(f: AccessLogFields): void {
    if (!this.enabled) return;
    // Every string as JSON (a client or an upstream chose most of them); numbers and booleans as they are.
    let line = `{"level":${INFO},"time":"${this.#clock.now()}"${this.#bindings},"reqId":${jsonString(f.reqId)},"method":${jsonString(f.method)},"url":${jsonString(f.url)},"status":${f.status}`;
    if (f.cache !== undefined) line += `,"cache":${jsonString(f.cache)}`;
    line += `,"bytes":${f.bytes},"ms":${f.ms}`;
    if (f.upstream !== undefined) line += `,"upstream":${jsonString(f.upstream)}`;
    line += `,"completed":${f.completed}`;
    if (f.userAgent !== undefined) line += `,"userAgent":${jsonString(f.userAgent)}`;
    if (f.identity !== undefined) line += `,"identity":${jsonString(f.identity)}`;
    if (f.client !== undefined) line += `,"client":${jsonString(f.client)}`;
    if (f.clientCN !== undefined) line += `,"clientCN":${jsonString(f.clientCN)}`;
    this.#stream.write(`${line},"msg":"request"}\n`);
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
