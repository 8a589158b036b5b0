// Typed registry errors. Every failure a client can see is one of these; http/error-response.ts
// is the only place that turns them into OCI JSON.

export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'PAGINATION_NUMBER_INVALID'
  | 'RANGE_INVALID'
  | 'TAG_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNAVAILABLE'
  | 'UNKNOWN';

export class RegistryError extends Error {
  readonly code: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(
    code: OciErrorCode,
    status: number,
    message: string,
    detail?: unknown,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.detail = detail;
    this.headers = headers;
  }
}

export class NameInvalidError extends RegistryError {
  constructor(name: string, why = 'invalid repository name') {
    super('NAME_INVALID', 400, why, { name });
  }
}

export class NameUnknownError extends RegistryError {
  constructor(name: string, why = 'repository name not known to registry') {
    super('NAME_UNKNOWN', 404, why, { name });
  }
}

export class DigestInvalidError extends RegistryError {
  constructor(digest: string, why = 'invalid digest') {
    super('DIGEST_INVALID', 400, why, { digest });
  }
}

export class PaginationInvalidError extends RegistryError {
  constructor(n: string) {
    super('PAGINATION_NUMBER_INVALID', 400, 'n must be a non-negative integer', { n });
  }
}

export class ManifestUnknownError extends RegistryError {
  constructor(reference: string) {
    super('MANIFEST_UNKNOWN', 404, 'manifest unknown', { reference });
  }
}

export class ManifestInvalidError extends RegistryError {
  constructor(why: string, detail?: unknown) {
    super('MANIFEST_INVALID', 502, why, detail);
  }
}

export class BlobUnknownError extends RegistryError {
  constructor(digest: string) {
    super('BLOB_UNKNOWN', 404, 'blob unknown to registry', { digest });
  }
}

export class RangeNotSatisfiableError extends RegistryError {
  constructor(size: number) {
    super('RANGE_INVALID', 416, 'requested range not satisfiable', { size }, {
      'Content-Range': `bytes */${size}`,
    });
  }
}

export class UnsupportedError extends RegistryError {
  constructor(message = 'wharf is a read-only pull-through cache; this operation is not supported') {
    super('UNSUPPORTED', 405, message, undefined, { Allow: 'GET, HEAD' });
  }
}

export class RouteNotFoundError extends RegistryError {
  constructor(path: string) {
    super('NAME_UNKNOWN', 404, 'no such registry endpoint', { path });
  }
}

/** The upstream could not give an answer (timeout, refused, 5xx) and nothing is cached. */
export class UpstreamUnavailableError extends RegistryError {
  constructor(upstream: string, why: string, retryAfterSeconds = 5) {
    super('UNAVAILABLE', 503, `upstream ${upstream} is unavailable: ${why}`, { upstream }, {
      'Retry-After': String(retryAfterSeconds),
    });
  }
}

export class UpstreamDeniedError extends RegistryError {
  constructor(upstream: string, status: number) {
    super('DENIED', 403, `upstream ${upstream} denied access (HTTP ${status}); check wharf's credentials for it`, {
      upstream,
      status,
    });
  }
}

export class UpstreamRateLimitedError extends RegistryError {
  constructor(upstream: string, retryAfter?: string) {
    super('TOOMANYREQUESTS', 429, `upstream ${upstream} rate limit reached and nothing is cached`, { upstream }, {
      'Retry-After': retryAfter ?? '60',
    });
  }
}

/** Upstream answered with something that breaks the protocol (wrong digest, missing headers). */
export class UpstreamProtocolError extends RegistryError {
  constructor(upstream: string, why: string) {
    super('UNKNOWN', 502, `upstream ${upstream} sent an invalid response: ${why}`, { upstream });
  }
}

/** An upstream tag list longer than wharf's configured bounds: refused whole, never cut short. */
export class TagListTooLargeError extends RegistryError {
  /** @param beyond what it is past, e.g. "1000 tags (cache.tagListMaxTags)" */
  constructor(upstream: string, repository: string, beyond: string) {
    super('UNKNOWN', 502, `upstream ${upstream}'s tag list for ${repository} has more than ${beyond}; wharf does not serve a list cut short`, {
      upstream,
      repository,
    });
  }
}

/** The upstream has no referrers API: clients fall back to the sha256-<hex> tag. */
export class ReferrersUnsupportedError extends RegistryError {
  constructor(upstream: string) {
    super('UNSUPPORTED', 404, `upstream ${upstream} does not support the referrers API; use the referrers tag schema`, { upstream });
  }
}

/** The admin API was asked without its bearer token, or with another. */
export class AdminUnauthorizedError extends RegistryError {
  constructor() {
    super('UNAUTHORIZED', 401, 'admin API: missing or wrong bearer token', undefined, { 'WWW-Authenticate': 'Bearer realm="wharf-admin"' });
  }
}

/** A hit thread could not reach the main thread (it is starting or stopping). */
export class MainThreadUnavailableError extends RegistryError {
  constructor() {
    super('UNAVAILABLE', 503, 'wharf is starting or stopping; try again', undefined, { 'Retry-After': '1' });
  }
}

/** A replica's peer endpoint was asked without the cluster secret, or with another. */
export class PeerUnauthorizedError extends RegistryError {
  constructor() {
    super('UNAUTHORIZED', 401, 'peer endpoint: missing or wrong cluster secret', undefined, { 'WWW-Authenticate': 'Bearer realm="wharf-peer"' });
  }
}

/** The manifest exists, but the client's Accept header lists none of the types it could be sent as. */
export class ManifestNotAcceptedError extends RegistryError {
  constructor(reference: string, message: string) {
    super('MANIFEST_UNKNOWN', 404, message, { reference });
  }
}
