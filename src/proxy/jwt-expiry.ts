// When a JWT says it expires, read without verifying anything: only to schedule renewing it
// (the registry checks the token itself). ACR's refresh and access tokens carry it.

/** The exp claim (seconds) of a JWT's payload, without verifying anything; undefined for no JWT. */
export function jwtExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    const exp = typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>).exp : undefined;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}
