// The one place where errors become HTTP responses: OCI JSON {"errors":[{code,message,detail}]}.
// Anything that is not a RegistryError is a bug: logged with its stack, answered 500 UNKNOWN.
import type { Logger } from 'pino';
import { RegistryError } from '../errors.ts';
import { API_VERSION_HEADERS } from './registry-headers.ts';

export function errorResponse(err: unknown, method: string, log: Logger): Response {
  const registryError =
    err instanceof RegistryError ? err : new RegistryError('UNKNOWN', 500, 'internal error; see the wharf log');
  if (!(err instanceof RegistryError)) log.error({ err }, 'unhandled error');
  const body = JSON.stringify({
    errors: [{ code: registryError.code, message: registryError.message, detail: registryError.detail ?? null }],
  });
  const headers: Record<string, string> = {
    ...API_VERSION_HEADERS,
    ...registryError.headers,
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
  };
  return new Response(method === 'HEAD' ? null : body, { status: registryError.status, headers });
}
