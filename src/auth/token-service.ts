// Docker registry tokens issued and verified by wharf itself (distribution `spec/auth/token.md`
// and `spec/auth/jwt.md`): a client that got a 401 Bearer challenge asks the token endpoint,
// which authenticates it once (one bcrypt at most) and answers with a short-lived JWT; every
// registry request then carries that JWT.
//
// Verification is on the per-request path, so a verified token is remembered until its exp,
// keyed by the token string: a repeated token costs a map lookup, not a signature check. Only
// tokens that verified are remembered; a forged one is checked (and refused) every time.
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { growingLru } from '../growing-lru.ts';
import {
  ExpiredTokenError,
  TokenAlgorithmError,
  TokenAudienceError,
  TokenError,
  TokenIssuerError,
  TokenMalformedError,
  TokenNotYetValidError,
  TokenSignatureError,
  UnknownServiceError,
} from './auth-errors.ts';
import { isIdentityKind, type Identity, type IdentityKind } from './identity.ts';
import type { ResourceAccess } from './scope.ts';
import type { TokenKeys } from './token-keys.ts';

export interface TokenServiceOptions {
  /** `iss` of issued tokens, and the only issuer accepted. */
  readonly issuer: string;
  /** `aud`: the service name in the Bearer challenge; the only audience accepted. */
  readonly service: string;
  /** Lifetime of an issued token; default 300 s, as Docker Hub's. */
  readonly ttlSeconds?: number;
  /** How many verified tokens are remembered; default 10000. */
  readonly cacheMax?: number;
}

/** What the token endpoint answers (`token` and `access_token` are the same JWT). */
export interface IssuedToken {
  readonly token: string;
  readonly access_token: string;
  readonly expires_in: number;
  readonly issued_at: string;
}

/** A token that verified: who it was issued to and what it grants. Frozen, shared by cache hits. */
export interface VerifiedToken {
  readonly kind: IdentityKind;
  readonly name: string | undefined;
  readonly groups: readonly string[];
  readonly access: readonly ResourceAccess[];
  /** exp, in milliseconds since the epoch. */
  readonly expiresAt: number;
}

/** Which of a requested scope's actions the identity may have (the access rules' answer). */
export type Grant = (scope: ResourceAccess, identity: Identity) => readonly string[];

// Replicas' clocks differ by a little; a token is valid from slightly before it was issued so
// that a replica running behind does not refuse a fresh token as not yet valid.
const NOT_BEFORE_LEEWAY_SECONDS = 30;

export class TokenService {
  readonly #issuer: string;
  readonly #service: string;
  readonly #ttlSeconds: number;
  readonly #keys: TokenKeys;
  readonly #now: () => number;
  readonly #verified: LRUCache<string, VerifiedToken>;

  /** @param now the clock, in ms since the epoch (injectable for expiry tests) */
  constructor(options: TokenServiceOptions, keys: TokenKeys, now: () => number = Date.now) {
    this.#issuer = options.issuer;
    this.#service = options.service;
    this.#ttlSeconds = options.ttlSeconds ?? 300;
    this.#keys = keys;
    this.#now = now;
    this.#verified = growingLru(options.cacheMax ?? 10_000);
  }

  /**
   * A token for `identity` granting, of each requested scope, the actions `grant` allows.
   * Scopes granted nothing are left out (a partial grant is still an answer, per the spec).
   * @param service the `service` parameter of the request; absent means this service
   */
  async issue(identity: Identity, service: string | undefined, scopes: readonly ResourceAccess[], grant: Grant): Promise<IssuedToken> {
    if (service !== undefined && service !== this.#service) throw new UnknownServiceError(service);
    const access: ResourceAccess[] = [];
    for (const scope of scopes) {
      const allowed = grant(scope, identity);
      // Never more than was asked for, whatever grant returns.
      const actions = scope.actions.filter((action) => allowed.includes(action));
      if (actions.length > 0) access.push({ type: scope.type, name: scope.name, actions });
    }
    const iat = Math.floor(this.#now() / 1000);
    const { alg, kid, privateKey } = this.#keys.signing;
    const token = await new SignJWT({
      access,
      wharf: { kind: identity.kind, groups: identity.groups },
    })
      .setProtectedHeader({ alg, kid, typ: 'JWT' })
      .setIssuer(this.#issuer)
      .setSubject(identity.name ?? '')
      .setAudience(this.#service)
      .setIssuedAt(iat)
      .setNotBefore(iat - NOT_BEFORE_LEEWAY_SECONDS)
      .setExpirationTime(iat + this.#ttlSeconds)
      .setJti(randomBytes(16).toString('base64url'))
      .sign(privateKey);
    return { token, access_token: token, expires_in: this.#ttlSeconds, issued_at: new Date(iat * 1000).toISOString() };
  }

  /** A token verified before and not yet expired, without any signature check; else undefined. */
  cached(token: string): VerifiedToken | undefined {
    const hit = this.#verified.get(token);
    if (hit === undefined) return undefined;
    if (hit.expiresAt > this.#now()) return hit;
    this.#verified.delete(token);
    return undefined;
  }

  /** Throws a TokenError subclass saying which check failed. */
  async verify(token: string): Promise<VerifiedToken> {
    const hit = this.cached(token);
    if (hit !== undefined) return hit;
    const key = this.#keyFor(token);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key.publicKey, {
        // Only the key's own algorithm, explicitly: never 'none', never an HMAC with a public key.
        algorithms: [key.alg],
        issuer: this.#issuer,
        audience: this.#service,
        requiredClaims: ['exp', 'nbf', 'iat', 'jti', 'sub'],
        currentDate: new Date(this.#now()),
      }));
    } catch (err) {
      throw tokenError(err);
    }
    const verified = verifiedFrom(payload);
    const ttl = verified.expiresAt - this.#now();
    if (ttl > 0) this.#verified.set(token, verified, { ttl });
    return verified;
  }

  #keyFor(token: string) {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new TokenMalformedError('malformed token: not a JWS in compact form');
    }
    if (typeof header.alg !== 'string' || header.alg === 'none') throw new TokenAlgorithmError();
    if (token.split('.').length !== 3) throw new TokenMalformedError('malformed token: not a JWS in compact form');
    if (typeof header.kid !== 'string') throw new TokenMalformedError('malformed token: no kid');
    const key = this.#keys.verification.get(header.kid);
    if (key === undefined) throw new TokenSignatureError('token signed by a key wharf does not accept');
    if (header.alg !== key.alg) throw new TokenAlgorithmError();
    return key;
  }
}

function tokenError(err: unknown): TokenError {
  if (err instanceof TokenError) return err;
  if (err instanceof joseErrors.JWTExpired) return new ExpiredTokenError();
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return new TokenAudienceError();
    if (err.claim === 'iss') return new TokenIssuerError();
    if (err.claim === 'nbf') return new TokenNotYetValidError();
    return new TokenMalformedError(`malformed token: claim ${err.claim} ${err.reason}`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new TokenSignatureError();
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new TokenAlgorithmError();
  return new TokenMalformedError();
}

function verifiedFrom(payload: JWTPayload): VerifiedToken {
  const malformed = (what: string) => new TokenMalformedError(`malformed token: ${what}`);
  const wharf = payload['wharf'] as { kind?: unknown; groups?: unknown } | undefined;
  if (typeof wharf !== 'object' || wharf === null || !isIdentityKind(wharf.kind)) throw malformed('no wharf identity claim');
  if (!isStringArray(wharf.groups)) throw malformed('groups is not a list of names');
  if (typeof payload.sub !== 'string' || typeof payload.exp !== 'number') throw malformed('sub or exp');
  const rawAccess = payload['access'];
  if (!Array.isArray(rawAccess)) throw malformed('access is not a list');
  const access = rawAccess.map((entry: unknown) => {
    const e = entry as { type?: unknown; name?: unknown; actions?: unknown } | null;
    if (typeof e !== 'object' || e === null || (e.type !== 'repository' && e.type !== 'registry')) throw malformed('access type');
    if (typeof e.name !== 'string' || !isStringArray(e.actions)) throw malformed('access entry');
    return Object.freeze({ type: e.type, name: e.name, actions: Object.freeze([...e.actions]) });
  });
  return Object.freeze({
    kind: wharf.kind,
    name: payload.sub === '' ? undefined : payload.sub,
    groups: Object.freeze([...wharf.groups]),
    access: Object.freeze(access),
    expiresAt: payload.exp * 1000,
  });
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
