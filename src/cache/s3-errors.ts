// What an S3 error means for the blob store, read from the SDK's exceptions: the HTTP status
// where the server sent one (S3-compatible servers disagree on error names), else the name.

/** An S3 request failed in a way the blob store cannot turn into an answer (not a 404). */
export class S3BlobStoreError extends Error {
  readonly operation: string;
  readonly status: number | undefined;
  constructor(operation: string, cause: unknown) {
    super(`s3 ${operation} failed: ${describe(cause)}`, { cause });
    this.name = 'S3BlobStoreError';
    this.operation = operation;
    this.status = statusOf(cause);
  }
}

export function statusOf(err: unknown): number | undefined {
  const status = (err as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

function nameOf(err: unknown): string | undefined {
  const name = (err as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' ? name : undefined;
}

export function isNotFound(err: unknown): boolean {
  const name = nameOf(err);
  return statusOf(err) === 404 || name === 'NotFound' || name === 'NoSuchKey';
}

/** The object exists already: a conditional publish (If-None-Match: *) lost to an earlier one. */
export function isAlreadyExists(err: unknown): boolean {
  return statusOf(err) === 412 || nameOf(err) === 'PreconditionFailed';
}

/** AWS's answer while another conditional write of the same key is in flight. */
export function isConditionalConflict(err: unknown): boolean {
  return statusOf(err) === 409 || nameOf(err) === 'ConditionalRequestConflict';
}

export function isRangeNotSatisfiable(err: unknown): boolean {
  return statusOf(err) === 416 || nameOf(err) === 'InvalidRange';
}

function describe(err: unknown): string {
  const status = statusOf(err);
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return status === undefined ? message : `${status} ${message}`;
}
