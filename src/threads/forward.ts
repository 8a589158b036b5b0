// A hit thread hands a request it cannot answer from the cache to the main thread, which owns
// upstream traffic, fills and everything else: the request goes to the main thread's internal
// listener on loopback and its answer, body streamed, comes back verbatim.
import { Agent, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { MainThreadUnavailableError } from '../errors.ts';

// Per-hop headers: they describe one connection, not the message.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

export class Forwarder {
  readonly #host: string;
  readonly #port: number;
  readonly #agent = new Agent({ keepAlive: true });

  constructor(target: { host: string; port: number }) {
    this.#host = target.host;
    this.#port = target.port;
  }

  /** Resolves once the answer's headers are written and its body is on its way. */
  async forward(incoming: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers = endToEnd(incoming.headers);
    const requestId = res.getHeader('X-Request-Id');
    if (typeof requestId === 'string') headers['x-request-id'] = requestId;
    const outgoing = request({ host: this.#host, port: this.#port, method: incoming.method, path: incoming.url, headers, agent: this.#agent });
    const answer = await new Promise<IncomingMessage>((resolve, reject) => {
      outgoing.once('response', resolve);
      outgoing.once('error', reject);
      outgoing.end();
    }).catch(() => {
      throw new MainThreadUnavailableError();
    });
    res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
    res.flushHeaders();
    // A body cut short on the main thread's side is cut here too: the client sees a short body.
    void pipeline(answer, res).catch(() => res.destroy());
  }

  close(): void {
    this.#agent.destroy();
  }
}

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  }
  return kept;
}
