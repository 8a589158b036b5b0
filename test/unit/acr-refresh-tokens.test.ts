// How long an ACR refresh token is used: the exp of its JWT payload, read without verifying,
// less a margin and capped; a fixed lifetime for anything that is no JWT or has no usable exp.
import { describe, expect, it } from 'vitest';
import { heldUntil } from '../../src/proxy/acr-refresh-tokens.ts';
import { jwtExpiry } from '../../src/proxy/jwt-expiry.ts';
import { tokenLifetimeSeconds } from '../../src/proxy/token-cache.ts';

const part = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const jwt = (payload: unknown) => `${part({ alg: 'RS256', typ: 'JWT' })}.${part(payload)}.c2ln`;

describe('jwtExpiry', () => {
  it('reads exp from the payload; anything else is no expiry', () => {
    expect(jwtExpiry(jwt({ exp: 1_900_000_000, aud: 'r.azurecr.io' }))).toBe(1_900_000_000);
    expect(jwtExpiry('opaque-refresh-token')).toBeUndefined();
    expect(jwtExpiry(jwt({ exp: '1900000000' }))).toBeUndefined();
    expect(jwtExpiry(jwt({ iat: 1 }))).toBeUndefined();
    expect(jwtExpiry(jwt('not json'))).toBeUndefined();
    expect(jwtExpiry(jwt(null))).toBeUndefined();
    expect(jwtExpiry('a..b')).toBeUndefined();
    expect(jwtExpiry(`${jwt({ exp: 5 })}.extra`)).toBeUndefined();
  });
});

describe('heldUntil', () => {
  const now = 1_800_000_000_000;
  it('is exp less a minute, at most a day ahead; one hour for a token without a readable exp', () => {
    expect(heldUntil(jwt({ exp: now / 1000 + 3 * 3600 }), now)).toBe(now + 3 * 3600_000 - 60_000);
    expect(heldUntil(jwt({ exp: now / 1000 + 30 }), now)).toBeLessThan(now);
    expect(heldUntil(jwt({ exp: now / 1000 + 365 * 86400 }), now)).toBe(now + 86400_000);
    expect(heldUntil('opaque', now)).toBe(now + 3600_000);
  });
});

describe('access token lifetime', () => {
  const jwt = (payload: object) => `h.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.s`;
  const now = Date.UTC(2026, 11, 1);
  it('takes expires_in when the answer gives it', () => {
    expect(tokenLifetimeSeconds(300, jwt({ exp: now / 1000 + 3000 }), now)).toBe(300);
  });
  it('reads a JWT token\'s exp when the answer has no expires_in (ACR), capped at an hour', () => {
    expect(tokenLifetimeSeconds(undefined, jwt({ exp: now / 1000 + 1200 }), now)).toBe(1200);
    expect(tokenLifetimeSeconds(undefined, jwt({ exp: now / 1000 + 86_400 }), now)).toBe(3600);
    expect(tokenLifetimeSeconds(undefined, jwt({ exp: now / 1000 - 5 }), now)).toBe(1);
  });
  it('keeps the spec\'s 60 s for a token that says nothing', () => {
    expect(tokenLifetimeSeconds(undefined, 'opaque-token', now)).toBe(60);
    expect(tokenLifetimeSeconds(0, jwt({ sub: 'x' }), now)).toBe(60);
  });
});
