// The innermost link of an upstream's chain: one HTTP exchange with one host over the upstream's
// keep-alive pools (an undici Agent with its deadlines and the dial policy's lookup), composed
// with undici's retry interceptor for connections closed under us, and its errors turned into
// the upstream's terms. Auth (hop-auth.ts) and redirects (upstream-client.ts) wrap it. A blob's
// GET over plain HTTP goes on wharf's own connections instead (plain-exchange.ts).
import { Agent, interceptors } from 'undici';
import { UpstreamProtocolError } from '../errors.ts';
import { RefusedAddressError, type DialPolicy } from './dial-policy.ts';
import { toUpstreamFailure } from './upstream-failure.ts';
import type { UpstreamResponse } from './upstream-client.ts';
import { isPlainBlobGet, PlainExchanges } from './plain-exchange.ts';

/** One request to one host: no redirects followed, no auth added. */
export interface Hop {
  /** POST only for OAuth2 token requests (form bodies). */
  readonly method: 'GET' | 'HEAD' | 'POST';
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

export type HopAnswer = Omit<UpstreamResponse, 'authRejected'>;
export type HopDispatch = (hop: Hop) => Promise<HopAnswer>;

export interface Transport {
  readonly dispatch: HopDispatch;
  close(): Promise<void>;
}

export function createTransport(upstream: string, timeouts: { connectMs: number; headersMs: number; bodyIdleMs: number }, dial: DialPolicy): Transport {
  const agent = new Agent({
    connect: { timeout: timeouts.connectMs, lookup: dial.lookup },
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyIdleMs,
  });
  // A kept-alive connection the server closed just as we reused it: GET and HEAD are idempotent,
  // so try once more on a fresh connection (as Go's http.Transport does), at once. Only resets
  // are retried; statuses, timeouts and refusals are the upstream's answer and go up as they are.
  const dispatcher = agent.compose(
    interceptors.retry({ maxRetries: 1, minTimeout: 0, methods: ['GET', 'HEAD'], statusCodes: [], errorCodes: ['UND_ERR_SOCKET', 'ECONNRESET'] }),
  );
  const send = (hop: Hop) =>
    dispatcher.request({
      origin: hop.url.origin,
      path: hop.url.pathname + hop.url.search,
      method: hop.method,
      headers: hop.headers,
      ...(hop.body === undefined ? {} : { body: hop.body }),
      signal: hop.signal,
      // undici closes the connection after every HEAD by default (for servers that send a
      // body anyway); registries do not, and a tag revalidation per new TLS connection costs.
      reset: false,
    });
  const plain = new PlainExchanges(timeouts, dial.lookup);
  return {
    async dispatch(hop) {
      try {
        return await (isPlainBlobGet(hop) ? plain.exchange(hop) : send(hop));
      } catch (err) {
        const refused = err instanceof RefusedAddressError ? err : (err as { cause?: unknown } | null)?.cause;
        // Not an outage: the upstream pointed somewhere it may not lead.
        if (refused instanceof RefusedAddressError) throw new UpstreamProtocolError(upstream, refused.message);
        throw toUpstreamFailure(upstream, err) ?? err;
      }
    },
    close: () => {
      plain.close();
      return agent.close();
    },
  };
}
