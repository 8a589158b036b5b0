// What wharf records about every registry request once it is answered: the request metrics, the
// pull count of a repository, and one access log line. Shared by the Hono middleware and the
// manifest fast path, so both count and log a request the same way.
import type { Logger } from 'pino';
import type { Metrics, RequestKind } from '../metrics/metrics.ts';
import type { TopRepositories } from '../metrics/top-repositories.ts';
import { describeIdentity, type Identity } from '../auth/identity.ts';
import type { ClientInfo } from './client-info.ts';
import { AccessLog } from '../logging/access-log.ts';
import { RequestIds } from './request-ids.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface RequestOutcome {
  readonly reqId: string;
  readonly method: string;
  /** Path and query as the client sent them. */
  readonly url: string;
  readonly status: number;
  readonly kind: RequestKind;
  /** The X-Wharf-Cache value, when the answer has one. */
  readonly cache: string | undefined;
  readonly upstream: string | undefined;
  readonly repository: string | undefined;
  /** `<upstream>/<repository>`, when the caller has it already (the pull count's key). */
  readonly pulledAs?: string;
  readonly bytes: number;
  readonly seconds: number;
  /** Every byte went out (false: the client left or the body was cut). */
  readonly completed: boolean;
  readonly userAgent: string | undefined;
  /** Who asked (logged as describeIdentity() names it, never a secret); undefined when wharf is open. */
  readonly identity?: Identity | undefined;
  readonly client: ClientInfo;
}

export class RequestObserver {
  readonly #accessLog: AccessLog;
  readonly #metrics: Metrics;
  readonly #topRepositories: Pick<TopRepositories, 'record'>;
  readonly #ids = new RequestIds();

  constructor(deps: { logger: Logger; metrics: Metrics; topRepositories: Pick<TopRepositories, 'record'> }) {
    this.#accessLog = new AccessLog(deps.logger);
    this.#metrics = deps.metrics;
    this.#topRepositories = deps.topRepositories;
  }

  /** The client's X-Request-Id when it is sane, else a new one. */
  requestId(offered: string | undefined): string {
    return offered && REQUEST_ID.test(offered) ? offered : this.#ids.next();
  }

  record(o: RequestOutcome): void {
    const result = o.status >= 400 ? 'error' : (o.cache ?? 'none');
    this.#metrics.countRequest(o.kind, result, o.upstream ?? 'none', o.bytes);
    this.#metrics.requestDuration.observe(o.kind, o.seconds);
    if (o.kind === 'manifest' && o.method === 'GET' && o.status === 200) this.#topRepositories.record(o.pulledAs ?? `${o.upstream}/${o.repository}`);
    // Skipped before the line is built: at tens of thousands of hits a second, that matters.
    if (!this.#accessLog.enabled) return;
    this.#accessLog.write({
      reqId: o.reqId,
      method: o.method,
      url: o.url,
      status: o.status,
      cache: o.cache,
      bytes: o.bytes,
      ms: Math.round(o.seconds * 10_000) / 10,
      upstream: o.upstream,
      completed: o.completed,
      userAgent: o.userAgent,
      identity: describeIdentity(o.identity),
      client: o.client.address,
      clientCN: o.client.certificate?.subjectCN,
    });
  }
}
