// What a client can be told when its credentials fail. All are 401 UNAUTHORIZED RegistryErrors,
// so the one error handler serialises them; the WWW-Authenticate challenge depends on the
// listener's realm and is the route's to add. No message or detail ever carries a password, a
// token, a hash or a user name: errors reach logs and clients.
import { RegistryError } from '../errors.ts';

export type AuthFailure =
  | 'bad-credentials'
  | 'expired'
  | 'signature'
  | 'audience'
  | 'issuer'
  | 'malformed'
  | 'algorithm'
  | 'not-yet-valid';

export abstract class AuthError extends RegistryError {
  abstract readonly reason: AuthFailure;

  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAUTHORIZED', 401, message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** A wrong password, an unknown user, an unknown or invalid bearer token, an unusable header. */
export class BadCredentialsError extends AuthError {
  override readonly reason = 'bad-credentials';
  constructor(message = 'authentication failed: credentials not recognised', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A wharf token, or a failure to verify one; subclasses say which check it failed. */
export abstract class TokenError extends AuthError {}

/** Signed by wharf, but past its exp: the client should fetch a new one. */
export class ExpiredTokenError extends TokenError {
  override readonly reason = 'expired';
  constructor() {
    super('token expired');
  }
}

export class TokenNotYetValidError extends TokenError {
  override readonly reason = 'not-yet-valid';
  constructor() {
    super('token not yet valid (nbf)');
  }
}

/** The signature does not verify, or no key wharf accepts has the token's kid. */
export class TokenSignatureError extends TokenError {
  override readonly reason = 'signature';
  constructor(why = 'token signature does not verify with any key wharf accepts') {
    super(why);
  }
}

export class TokenAudienceError extends TokenError {
  override readonly reason = 'audience';
  constructor() {
    super('token is for another service (aud)');
  }
}

export class TokenIssuerError extends TokenError {
  override readonly reason = 'issuer';
  constructor() {
    super('token is from another issuer (iss)');
  }
}

/** alg none, or any algorithm other than the accepted keys' own. */
export class TokenAlgorithmError extends TokenError {
  override readonly reason = 'algorithm';
  constructor() {
    super('token algorithm not accepted');
  }
}

/** Not a JWS compact token, or its claims are not the shape wharf issues. */
export class TokenMalformedError extends TokenError {
  override readonly reason = 'malformed';
  constructor(why = 'malformed token') {
    super(why);
  }
}

/** A token was asked for a service other than this wharf's. */
export class UnknownServiceError extends RegistryError {
  constructor(service: string) {
    super('DENIED', 400, 'token requested for a service this registry is not', { service });
  }
}
