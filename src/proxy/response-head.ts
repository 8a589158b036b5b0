// The head of an HTTP/1.1 response read off a plain socket (plain-exchange.ts): the status, the
// headers as undici hands them (lower-case names, a repeated header as an array), how the body
// is framed, and whether the connection may carry another request. Strict: anything a careful
// parser would refuse is refused, and a body framed two ways (Content-Length and
// Transfer-Encoding) is an error, not a guess, as it is how responses are smuggled.
import type { IncomingHttpHeaders } from 'node:http';

export type BodyFraming = { readonly kind: 'none' } | { readonly kind: 'length'; readonly length: number } | { readonly kind: 'chunked' } | { readonly kind: 'close' };

export interface ResponseHead {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  readonly framing: BodyFraming;
  /** The connection may carry another request once this body is read. */
  readonly keepAlive: boolean;
}

/** Node's and undici's default limit on a response head. */
export const MAX_HEAD_BYTES = 16 << 10;
const MAX_HEADERS = 200;

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DIGITS = /^\d{1,15}$/;

/** A head no careful parser would take (the code is llhttp's, as undici reports such heads). */
export class ResponseHeadError extends Error {
  readonly code = 'HPE_INVALID_RESPONSE';
  constructor(reason: string) {
    super(`invalid response head: ${reason}`);
    this.name = 'ResponseHeadError';
  }
}

/**
 * One head, as latin1 text without its closing blank line. The answer to a GET is assumed (a
 * HEAD's body is never read here), and an interim (1xx) head is refused: a GET asks for none.
 */
export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const status = STATUS_LINE.exec(lines[0]!);
  if (!status) throw new ResponseHeadError('bad status line');
  if (lines.length - 1 > MAX_HEADERS) throw new ResponseHeadError(`more than ${MAX_HEADERS} headers`);
  const headers: IncomingHttpHeaders = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    // A bare LF inside a line, obs-fold (a line starting with white space) or no name at all.
    if (colon <= 0 || line.includes('\n')) throw new ResponseHeadError('bad header line');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) throw new ResponseHeadError('bad header line');
    addHeader(headers, name.toLowerCase(), value);
  }
  const statusCode = Number(status[2]);
  if (statusCode < 200) throw new ResponseHeadError(`interim ${statusCode} to a GET`);
  const http11 = status[1] === '1';
  const connection = listValue(headers.connection);
  const keepAlive = http11 ? !connection.includes('close') : connection.includes('keep-alive');
  const framing = framingOf(statusCode, headers);
  return { statusCode, headers, framing, keepAlive: keepAlive && framing.kind !== 'close' };
}

function framingOf(statusCode: number, headers: IncomingHttpHeaders): BodyFraming {
  if (statusCode === 204 || statusCode === 304) return { kind: 'none' };
  const transferEncoding = headers['transfer-encoding'];
  const contentLength = headers['content-length'];
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) throw new ResponseHeadError('both Content-Length and Transfer-Encoding');
    // RFC 9112 6.3: chunked last is chunked; any other coding last, the body runs to the close.
    const codings = listValue(transferEncoding);
    return codings[codings.length - 1] === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  if (contentLength === undefined) return { kind: 'close' };
  // One Content-Length, digits only: a repeated one is refused even when the copies agree, as undici does.
  if (Array.isArray(contentLength) || !DIGITS.test(contentLength)) throw new ResponseHeadError('bad Content-Length');
  return { kind: 'length', length: Number(contentLength) };
}

function addHeader(headers: IncomingHttpHeaders, name: string, value: string): void {
  const had = headers[name];
  if (had === undefined) headers[name] = value;
  else if (Array.isArray(had)) had.push(value);
  else (headers as Record<string, string | string[]>)[name] = [had, value];
}

/** A comma-separated header, every copy of it, as lower-case items. */
function listValue(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== '');
}
