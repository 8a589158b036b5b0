// An upstream that gave no HTTP answer at all (timeout, refused, reset, DNS). Distinct from an
// HTTP error status: it is what "the upstream is unreachable" means for stale serving and 503s.

export type UpstreamFailureKind =
  | 'connect-timeout'
  | 'headers-timeout'
  | 'total-timeout'
  | 'refused'
  | 'reset'
  | 'dns'
  | 'auth-server'
  | 'other';

export class UpstreamFailure extends Error {
  readonly kind: UpstreamFailureKind;
  readonly upstream: string;
  /** What went wrong, without the upstream's name (which `message` starts with, for logs). */
  readonly reason: string;

  constructor(upstream: string, kind: UpstreamFailureKind, reason: string, options?: { cause?: unknown }) {
    super(`${upstream}: ${reason}`, options);
    this.name = 'UpstreamFailure';
    this.upstream = upstream;
    this.kind = kind;
    this.reason = reason;
  }
}

const KIND_BY_CODE: Record<string, UpstreamFailureKind> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect-timeout',
  UND_ERR_HEADERS_TIMEOUT: 'headers-timeout',
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  ETIMEDOUT: 'connect-timeout',
  EHOSTUNREACH: 'refused',
  ENETUNREACH: 'refused',
};

/**
 * Classifies an error thrown while waiting for an upstream's response headers. Aborts by our
 * own caller are not failures of the upstream and come back as undefined.
 */
export function toUpstreamFailure(upstream: string, err: unknown): UpstreamFailure | undefined {
  if (err instanceof UpstreamFailure) return err;
  if (!(err instanceof Error)) return new UpstreamFailure(upstream, 'other', String(err));
  // AbortSignal.timeout(): a whole-response deadline wharf set (manifestTotalMs) ran out.
  if (err.name === 'TimeoutError') return new UpstreamFailure(upstream, 'total-timeout', `no complete answer in time: ${err.message}`, { cause: err });
  if (err.name === 'AbortError' || codeOf(err) === 'UND_ERR_ABORTED') return undefined;
  const code = codeOf(err) ?? codeOf(err.cause);
  const kind = (code && KIND_BY_CODE[code]) || 'other';
  return new UpstreamFailure(upstream, kind, code ? `${code}: ${err.message}` : err.message, { cause: err });
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}
