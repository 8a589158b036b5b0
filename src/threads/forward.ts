// A hit thread hands a request it cannot answer from the cache to the main thread, which owns
// upstream traffic, fills and everything else: the request goes to the main thread's internal
// listener on loopback, body and all, with who the client is (its address and verified
// certificate), and its answer, body streamed, comes back verbatim. The one exception: a blob
// the main thread is filling, which this thread sends itself from the fill's file, told only the
// fill's progress (threads/followed-fill.ts).
import { Agent, request, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { MainThreadUnavailableError } from '../errors.ts';
import { clientInfo } from '../http/client-info.ts';
import { setForwardedClientHeaders } from '../http/forwarded-client.ts';
import { isHandover, sendFollowedFill, type FillFollowing } from './followed-fill.ts';

// Per-hop headers: they describe one connection, not the message.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);
// Met on the client's hop: Node's server sent 100 Continue before it handed over the request.
const MET_HERE = 'expect';

export class Forwarder {
  readonly #host: string;
  readonly #port: number;
  readonly #secret: string;
  readonly #agent = new Agent({ keepAlive: true });

  /** secret: what the internal listener wants beside the client headers before it believes them. */
  constructor(target: { host: string; port: number }, secret: string) {
    this.#host = target.host;
    this.#port = target.port;
    this.#secret = secret;
  }

  /**
   * Resolves once the answer's headers are written and its body is on its way. following: the
   * request is a blob GET this thread can serve from a running fill's file; the main thread may
   * then hand the fill over instead of sending the blob (http/fill-handover.ts).
   */
  async forward(incoming: IncomingMessage, res: ServerResponse, following?: FillFollowing): Promise<void> {
    const headers = endToEnd(incoming.headers);
    delete headers[MET_HERE];
    const body = hasBody(incoming.headers);
    // A GET with a body is odd enough to go the plain way: its connection bookkeeping is below.
    const follows = body ? undefined : following;
    // A body without a length is framed anew on this hop, chunked as the client's was.
    if (body && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
    const requestId = res.getHeader('X-Request-Id');
    if (typeof requestId === 'string') headers['x-request-id'] = requestId;
    // The main thread sees this loopback connection; these say who the client is.
    setForwardedClientHeaders(headers, clientInfo(incoming), this.#secret, follows !== undefined);
    const outgoing = request({ host: this.#host, port: this.#port, method: incoming.method, path: incoming.url, headers, agent: this.#agent });
    const answer = await new Promise<IncomingMessage>((resolve, reject) => {
      outgoing.once('response', resolve);
      outgoing.on('error', reject); // after the answer, its own stream reports a cut
      if (!body) {
        outgoing.end();
        return;
      }
      // Streamed with backpressure (pipe pauses the client while loopback is full); the main
      // thread reads no request body, so this holds at most a stream buffer or two.
      incoming.pipe(outgoing);
      incoming.once('close', () => {
        if (!incoming.complete) outgoing.destroy(); // the client left mid-body
      });
    }).catch(() => {
      throw new MainThreadUnavailableError();
    });
    const unfinished = body && stopBody(incoming, outgoing);
    // Asked for, and only then: a client cannot ask for it (setForwardedClientHeaders drops its header).
    if (follows && isHandover(answer)) {
      sendFollowedFill(answer, res, endToEndRaw(answer.rawHeaders), follows);
      return;
    }
    // As the main thread wrote them, names and all: a forwarded answer looks like a direct one.
    res.writeHead(answer.statusCode ?? 502, endToEndRaw(answer.rawHeaders));
    res.flushHeaders();
    // A body cut short on the main thread's side is cut here too: the client sees a short body.
    void pipeline(answer, res)
      .catch(() => res.destroy())
      .finally(() => {
        // The main thread still waits for the rest of that request: its connection cannot carry another.
        if (unfinished) outgoing.destroy();
      });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/**
 * The answer is final (every route of the main thread answers from the request's head), so the
 * rest of the body has no reader: it is no longer forwarded but discarded, as the main thread
 * discards it with one thread, which keeps the client's connection usable for its next request
 * (@hono/node-server also cuts it after 500 ms or 64 MiB of a body nobody reads, as with one
 * thread). True when the forwarded request was left unfinished.
 */
function stopBody(incoming: IncomingMessage, outgoing: ClientRequest): boolean {
  if (outgoing.writableEnded) return false;
  incoming.unpipe(outgoing);
  incoming.resume();
  return true;
}

/** RFC 9112 6.3: a request has a body when it says how it is framed. */
function hasBody(headers: IncomingHttpHeaders): boolean {
  return headers['transfer-encoding'] !== undefined || Number(headers['content-length'] ?? 0) > 0;
}

/** rawHeaders (name, value, name, value, ...) without the per-hop ones, the names' case kept. */
function endToEndRaw(raw: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) kept.push(raw[i]!, raw[i + 1]!);
  }
  return kept;
}

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  }
  return kept;
}
