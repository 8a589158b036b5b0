// The access log: one JSON line per answered request, in the shape of every other pino line
// (level, time, the logger's bindings, the fields, msg), written to the logger's own stream.
// The line is put together here rather than by logger.info: the fields are always these, none
// holds a secret (so the redaction pass pino runs over every object is not needed), and at tens
// of thousands of requests a second pino's generic object walk and redaction cost more than the
// rest of a cached manifest's answer (docs/benchmarks.md). It is encoded straight into the
// destination's buffer (line-sink.ts) from parts kept encoded: the head (level, time, bindings)
// made once per millisecond, the answer's fields per URL, the asker's as last seen; only the
// request id and the milliseconds are written afresh, and no string is made for the line.
import type { DestinationStream, Logger } from 'pino';
import { logBindings, logStream } from '../logger.ts';
import { isLineSink, type LineSink } from './line-sink.ts';
import { ownBytes } from '../own-bytes.ts';

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
const QUOTE = 0x22;
/** JSON.stringify writes a UTF-16 unit as at most 6 ASCII bytes (\u00XX), or 3 UTF-8 bytes. */
const MAX_JSON_BYTES_PER_UNIT = 6;
/** Room for the milliseconds however JavaScript prints them. */
const MAX_MS_BYTES = 32;
/** URLs whose answer fields are kept encoded, per method (the hot ones; a URL not kept costs its encoding, as every line once did); past it the map starts again. */
const MAX_KEPT_URLS = 512;

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
  readonly #sink: LineSink | undefined;
  readonly #head: LineHead;
  readonly #answers = new AnswerParts();
  readonly #asker = new AskerPart();
  /** For a destination that takes text only (a test's): the line is encoded here, then decoded. */
  #scratch: Buffer | undefined;

  constructor(logger: Logger) {
    this.enabled = logger.isLevelEnabled('info');
    this.#stream = logStream(logger);
    this.#sink = isLineSink(this.#stream) ? this.#stream : undefined;
    this.#head = new LineHead(logBindings(logger));
  }

  write(f: AccessLogFields): void {
    if (!this.enabled) return;
    const head = this.#head.now();
    const answer = this.#answers.of(f);
    const asker = this.#asker.of(f);
    const max = head.length + f.reqId.length * MAX_JSON_BYTES_PER_UNIT + 2 + answer.length + MAX_MS_BYTES + asker.length;
    const sink = this.#sink;
    let at: number;
    let buf: Buffer;
    if (sink) {
      at = sink.reserveLine(max);
      if (at < 0) return;
      buf = sink.lineBuffer;
    } else {
      at = 0;
      buf = this.#scratch = this.#scratch && this.#scratch.length >= max ? this.#scratch : Buffer.allocUnsafe(max);
    }
    buf.set(head, at);
    at = writeJsonString(buf, at + head.length, f.reqId);
    buf.set(answer, at);
    at = writeMs(buf, at + answer.length, f.ms);
    buf.set(asker, at);
    at += asker.length;
    if (sink) sink.commitLine(at);
    else this.#stream.write(buf.toString('utf8', 0, at));
  }
}

const TIME_AT = `{"level":${INFO},"time":"`.length;

/** `{"level":30,"time":"<ISO time>"<bindings>,"reqId":`, its time rewritten when the millisecond changes. */
class LineHead {
  readonly #bindings: string;
  #ms = -1;
  #timeLength = -1;
  #bytes: Buffer = Buffer.alloc(0);

  constructor(bindings: string) {
    this.#bindings = bindings;
  }

  now(): Buffer {
    const ms = Date.now();
    if (ms === this.#ms) return this.#bytes;
    this.#ms = ms;
    const time = new Date(ms).toISOString();
    // The same length as before (every year from 0 to 9999): only the time's bytes change.
    if (time.length === this.#timeLength) {
      this.#bytes.write(time, TIME_AT, 'latin1');
      return this.#bytes;
    }
    this.#timeLength = time.length;
    this.#bytes = ownBytes(`{"level":${INFO},"time":"${time}"${this.#bindings},"reqId":`);
    return this.#bytes;
  }
}

// The two runs of fields around "ms" that repeat from line to line: a client asking for the same
// tag again and again gets the same answer, from the same connection. Each is kept as the bytes
// it was last made into and made again only when a field differs, which saves a line's escaping,
// joining and encoding under a steady load.

interface AnswerPart {
  readonly status: number;
  readonly cache: string | undefined;
  readonly bytes: number;
  readonly encoded: Buffer;
}

/** method, url, status, cache, bytes: `,"method":...,"bytes":N,"ms":`, kept per method and URL. Every string as JSON (a client or an upstream chose most of them). */
class AnswerParts {
  readonly #byMethod = new Map<string, Map<string, AnswerPart>>();

  of(f: AccessLogFields): Buffer {
    let byUrl = this.#byMethod.get(f.method);
    if (byUrl === undefined) {
      // A client chooses the method: a handful are real; past eight the maps start again.
      if (this.#byMethod.size >= 8) this.#byMethod.clear();
      byUrl = new Map();
      this.#byMethod.set(f.method, byUrl);
    }
    const kept = byUrl.get(f.url);
    if (kept !== undefined && kept.status === f.status && kept.cache === f.cache && kept.bytes === f.bytes) return kept.encoded;
    let text = `,"method":${jsonString(f.method)},"url":${jsonString(f.url)},"status":${f.status}`;
    if (f.cache !== undefined) text += `,"cache":${jsonString(f.cache)}`;
    const encoded = ownBytes(`${text},"bytes":${f.bytes},"ms":`);
    if (kept === undefined && byUrl.size >= MAX_KEPT_URLS) byUrl.clear();
    byUrl.set(f.url, { status: f.status, cache: f.cache, bytes: f.bytes, encoded });
    return encoded;
  }
}

/** upstream, completed, userAgent, identity, client, clientCN, and the line's end. */
class AskerPart {
  #upstream: string | undefined = '';
  #completed = false;
  #userAgent: string | undefined;
  #identity: string | undefined;
  #client: string | undefined;
  #clientCN: string | undefined;
  #encoded: Buffer = Buffer.alloc(0);

  of(f: AccessLogFields): Buffer {
    if (
      f.upstream === this.#upstream &&
      f.completed === this.#completed &&
      f.userAgent === this.#userAgent &&
      f.identity === this.#identity &&
      f.client === this.#client &&
      f.clientCN === this.#clientCN
    ) {
      return this.#encoded;
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
    this.#encoded = ownBytes(`${text},"msg":"request"}\n`);
    return this.#encoded;
  }
}

/** s as JSON.stringify writes it, at `at`; returns where it ends. */
function writeJsonString(buf: Buffer, at: number, s: string): number {
  if (!NEEDS_NO_ESCAPE.test(s)) return at + buf.write(JSON.stringify(s), at);
  buf[at] = QUOTE;
  const end = at + 1 + buf.write(s, at + 1, 'latin1');
  buf[end] = QUOTE;
  return end + 1;
}

/**
 * ms as JavaScript prints it, at `at`. The access log's milliseconds are tenths (12.3): their
 * digits are written here, anything else is printed by String().
 */
function writeMs(buf: Buffer, at: number, ms: number): number {
  const tenths = Math.round(ms * 10);
  if (!(tenths >= 0 && tenths <= Number.MAX_SAFE_INTEGER && tenths / 10 === ms)) return at + buf.write(String(ms), at, 'latin1');
  let end = writeDigits(buf, at, Math.floor(tenths / 10));
  const tenth = tenths % 10;
  if (tenth !== 0) {
    buf[end++] = 0x2e;
    buf[end++] = 0x30 + tenth;
  }
  return end;
}

/** The decimal digits of a non-negative integer, at `at`; returns where they end. */
function writeDigits(buf: Buffer, at: number, n: number): number {
  let length = 1;
  for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) length++;
  let rest = n;
  for (let i = at + length - 1; i >= at; i--) {
    buf[i] = 0x30 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  return at + length;
}
