// A strict reader of the plainest HTTP/1.1 requests: a GET or HEAD head, no body, nothing that
// changes how the connection goes on. It exists for the fast connections (fast-connections.ts),
// which answer cached manifests without Node's HTTP machinery; it is deliberately a small subset
// of what Node's parser (llhttp) accepts, so that anything it takes means the same to both. What
// it does not take it does not interpret at all: the connection goes to Node, bytes untouched,
// and Node answers it, errors included.

export interface SimpleRequest {
  readonly method: 'GET' | 'HEAD';
  /** The request target as sent (origin form: path and query). */
  readonly url: string;
  /** Every Accept header, joined with ', ' as Node joins them. */
  readonly accept: string | undefined;
  readonly authorization: string | undefined;
  readonly host: string | undefined;
  readonly requestId: string | undefined;
  readonly userAgent: string | undefined;
  /** Bytes of the head, its blank line included: where the next request starts. */
  readonly length: number;
}

/** Not a whole head yet (more bytes may come). */
export const INCOMPLETE = 'incomplete';
/** Not one of the plainest requests: Node's to read. */
export const NOT_SIMPLE = 'not-simple';

export type ReadResult = SimpleRequest | typeof INCOMPLETE | typeof NOT_SIMPLE;

const END_OF_HEAD = Buffer.from('\r\n\r\n');
// Request line, then header lines: token names, values of visible characters, spaces, tabs and
// obs-text. No obs-fold (a continuation line has no name), no bare CR or LF, no leading blank line.
const HEAD = /^(GET|HEAD) (\/[\x21-\x7e]*) HTTP\/1\.1\r\n((?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*\r\n)*)$/;
// Headers that change framing or the connection's course: a body, an upgrade, a close, an
// expectation, a trailer. Any of them and the request is Node's.
const NOT_HERE = new Set(['content-length', 'transfer-encoding', 'connection', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection', 'keep-alive', 'http2-settings']);

/**
 * Reads the request that starts at `from` in `bytes`. maxHeadBytes: Node's limit (a head past it
 * is Node's to refuse with 431); maxHeaders likewise.
 */
export function readSimpleRequest(bytes: Buffer, from: number, maxHeadBytes: number, maxHeaders: number): ReadResult {
  const end = bytes.indexOf(END_OF_HEAD, from);
  if (end === -1) return bytes.length - from > maxHeadBytes || !mayBecomeSimple(bytes, from) ? NOT_SIMPLE : INCOMPLETE;
  const length = end + 4 - from;
  if (length > maxHeadBytes) return NOT_SIMPLE;
  // latin1: one character per byte, so the pattern sees every byte as it is.
  const head = HEAD.exec(bytes.toString('latin1', from, end + 2));
  if (head === null) return NOT_SIMPLE;
  let accept: string | undefined;
  let authorization: string | undefined;
  let host: string | undefined;
  let requestId: string | undefined;
  let userAgent: string | undefined;
  const lines = head[3]!;
  let count = 0;
  for (let at = 0; at < lines.length; ) {
    if (++count > maxHeaders) return NOT_SIMPLE;
    const colon = lines.indexOf(':', at);
    const eol = lines.indexOf('\r\n', colon);
    const name = lines.slice(at, colon).toLowerCase();
    const value = trimSpaces(lines.slice(colon + 1, eol));
    at = eol + 2;
    switch (name) {
      case 'accept':
        accept = accept === undefined ? value : `${accept}, ${value}`;
        break;
      // One of each, or Node's: which one counts is its rule to apply, not a guess here.
      case 'authorization':
        if (authorization !== undefined) return NOT_SIMPLE;
        authorization = value;
        break;
      case 'host':
        if (host !== undefined) return NOT_SIMPLE;
        host = value;
        break;
      case 'x-request-id':
        if (requestId !== undefined) return NOT_SIMPLE;
        requestId = value;
        break;
      case 'user-agent':
        if (userAgent !== undefined) return NOT_SIMPLE;
        userAgent = value;
        break;
      default:
        if (NOT_HERE.has(name)) return NOT_SIMPLE;
    }
  }
  return { method: head[1] as 'GET' | 'HEAD', url: head[2]!, accept, authorization, host, requestId, userAgent, length };
}

const STARTS = [Buffer.from('GET /'), Buffer.from('HEAD /')];

// Only what may still turn out simple is waited for. Anything else (a TLS ClientHello on the
// plain port, which Go clients send first to an insecure registry, another method) is Node's at
// once: it answers 400 straight away, and such clients then retry in plain HTTP.
function mayBecomeSimple(bytes: Buffer, from: number): boolean {
  const length = bytes.length - from;
  return STARTS.some((start) => bytes.compare(start, 0, Math.min(length, start.length), from, from + Math.min(length, start.length)) === 0);
}

// Optional whitespace around a field value is spaces and tabs only (RFC 9110 5.6.3), which is
// what Node strips; String.trim() would take more.
function trimSpaces(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value.charCodeAt(start) === 32 || value.charCodeAt(start) === 9)) start++;
  while (end > start && (value.charCodeAt(end - 1) === 32 || value.charCodeAt(end - 1) === 9)) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}
