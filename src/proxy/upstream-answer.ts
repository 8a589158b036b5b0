// What an upstream's non-success HTTP answer means for wharf's client. Shared by the blob,
// manifest, tag-list and referrer services so that every path maps statuses the same way.
import {
  RegistryError,
  UpstreamDeniedError,
  UpstreamProtocolError,
  UpstreamRateLimitedError,
  UpstreamUnavailableError,
} from '../errors.ts';

export interface UpstreamAnswer {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The upstream refused us after a fresh token: Docker Hub's way of saying "no such repo". */
  readonly authRejected: boolean;
}

/** 5xx and 429 say "the upstream cannot answer now": a cached copy may be served instead. */
export function isOutage(statusCode: number): boolean {
  return statusCode >= 500 || statusCode === 429;
}

/** The upstream does not answer HEAD for this (some registries, for manifests): ask with GET. */
export class HeadNotSupportedError extends UpstreamProtocolError {
  constructor(upstream: string) {
    super(upstream, 'HEAD not supported (405)');
  }
}

/** A status wharf has no meaning for in general; a caller may (the referrers API's 400/405). */
export class UnexpectedStatusError extends UpstreamProtocolError {
  readonly statusCode: number;
  constructor(upstream: string, statusCode: number) {
    super(upstream, `unexpected HTTP ${statusCode}`);
    this.statusCode = statusCode;
  }
}

export function upstreamAnswerError(upstream: string, answer: UpstreamAnswer, notFound: () => RegistryError): RegistryError {
  const { statusCode } = answer;
  if (statusCode === 404) return notFound();
  if (statusCode === 401) return answer.authRejected ? notFound() : new UpstreamDeniedError(upstream, statusCode);
  if (statusCode === 403) return new UpstreamDeniedError(upstream, statusCode);
  if (statusCode === 429) return new UpstreamRateLimitedError(upstream, headerValue(answer.headers['retry-after']));
  if (statusCode >= 500) return new UpstreamUnavailableError(upstream, `HTTP ${statusCode}`);
  return new UnexpectedStatusError(upstream, statusCode);
}

export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Content-Length as a number, or undefined when absent or malformed. */
export function contentLength(headers: Record<string, string | string[] | undefined>): number | undefined {
  const raw = headerValue(headers['content-length']);
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  return Number(raw);
}
