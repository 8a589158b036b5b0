// From what a request carries to an Identity: the Authorization header, a client certificate
// the TLS layer verified, and the client address.
//
// Order: an Authorization header decides when present, and a bad one is an error, never a
// silent fall-back to the certificate or to anonymous (a client that sends credentials means
// them). Basic is an htpasswd user. Bearer is first a wharf token (JWT shaped); a bearer that
// is not one, or that fails as one, is tried as a machine token, so a static token that happens
// to contain dots still works. Without a header: the certificate's subject, else anonymous.
// Whether the identity may do anything is the access rules' business, not this module's.
import { decodeJwt } from 'jose';
import { BadCredentialsError, ExpiredTokenError, TokenError } from './auth-errors.ts';
import type { AuthOutcomeListener } from './auth-outcome.ts';
import type { HtpasswdUsers } from './htpasswd.ts';
import { anonymousIdentity, isIdentityKind, type Identity, type IdentityKind } from './identity.ts';
import type { StaticTokens } from './static-tokens.ts';
import type { TokenService, VerifiedToken } from './token-service.ts';

/** A client certificate the TLS layer has verified against the configured CA. */
export interface ClientCertificate {
  /** The subject's common name; '' or undefined when it has none. */
  readonly subjectCN: string | undefined;
  /** As node:tls reports it: colon-separated hex. */
  readonly fingerprint256: string;
}

/** Shaped so that `{ ...clientInfo(req), authorization: req.headers.authorization }` fits. */
export interface RequestCredentials {
  readonly authorization?: string | undefined;
  readonly certificate?: ClientCertificate | undefined;
  readonly address: string;
}

export interface AuthenticatorParts {
  readonly htpasswd?: HtpasswdUsers;
  readonly tokens?: TokenService;
  readonly machines?: StaticTokens;
  readonly onOutcome?: AuthOutcomeListener;
}

const NO_GROUPS: readonly string[] = Object.freeze([]);
// Three base64url parts: the compact JWS form wharf's tokens have.
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export class Authenticator {
  readonly #parts: AuthenticatorParts;

  constructor(parts: AuthenticatorParts) {
    this.#parts = parts;
  }

  /** Throws BadCredentialsError or ExpiredTokenError; messages never hold a secret. */
  async authenticate(request: RequestCredentials): Promise<Identity> {
    const header = request.authorization?.trim() ?? '';
    const space = header.indexOf(' ');
    const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase();
    const value = space === -1 ? '' : header.slice(space + 1).trim();
    try {
      const identity = await this.#identify(header, scheme, value, request);
      this.#parts.onOutcome?.('ok', identity.kind);
      return identity;
    } catch (err) {
      this.#parts.onOutcome?.(err instanceof ExpiredTokenError ? 'expired' : 'bad-credentials', claimedKind(scheme, value));
      throw err;
    }
  }

  /**
   * The identity when memory alone decides it (no header, or a wharf token verified before),
   * else undefined: the caller then awaits authenticate(). For the manifest fast path.
   */
  authenticateNow(request: RequestCredentials): Identity | undefined {
    const header = request.authorization;
    let identity: Identity | undefined;
    if (header === undefined || header.length === 0) identity = fromCertificate(request.certificate, request.address);
    else if (header.startsWith('Bearer ')) {
      const known = this.#parts.tokens?.cached(header.slice(7).trim());
      if (known !== undefined) identity = fromToken(known, request.address);
    }
    if (identity !== undefined) this.#parts.onOutcome?.('ok', identity.kind);
    return identity;
  }

  #identify(header: string, scheme: string, value: string, request: RequestCredentials): Promise<Identity> | Identity {
    if (header.length === 0) return fromCertificate(request.certificate, request.address);
    if (scheme === 'basic') return this.#basic(value, request.address);
    if (scheme === 'bearer') return this.#bearer(value, request.address);
    throw new BadCredentialsError('authentication failed: unsupported Authorization scheme (use Basic or Bearer)');
  }

  async #basic(value: string, address: string): Promise<Identity> {
    const htpasswd = this.#parts.htpasswd;
    if (htpasswd === undefined) throw new BadCredentialsError('authentication failed: no password users are configured');
    const decoded = decodeBasic(value);
    if (decoded === undefined) throw new BadCredentialsError('authentication failed: malformed Basic credentials');
    if (!(await htpasswd.verify(decoded.user, decoded.password))) {
      throw new BadCredentialsError('authentication failed: wrong user name or password');
    }
    return { kind: 'user', name: decoded.user, groups: htpasswd.groupsOf(decoded.user), address };
  }

  async #bearer(value: string, address: string): Promise<Identity> {
    if (value.length === 0) throw new BadCredentialsError('authentication failed: empty bearer token');
    const { tokens, machines } = this.#parts;
    // The common case first: a token this process verified before, a map lookup.
    const known = tokens?.cached(value);
    if (known !== undefined) return fromToken(known, address);
    let tokenFailure: TokenError | undefined;
    if (tokens !== undefined && JWT_SHAPE.test(value)) {
      try {
        return fromToken(await tokens.verify(value), address);
      } catch (err) {
        if (!(err instanceof TokenError)) throw err;
        tokenFailure = err;
      }
    }
    const machine = machines?.identify(value);
    if (machine !== undefined) return { kind: 'machine', name: machine.name, groups: machine.groups, address };
    // Expired is worth telling apart: the client should fetch a new token, not new credentials.
    if (tokenFailure instanceof ExpiredTokenError) throw tokenFailure;
    throw new BadCredentialsError('authentication failed: unknown or invalid bearer token', tokenFailure && { cause: tokenFailure });
  }
}

function fromToken(verified: VerifiedToken, address: string): Identity {
  return { kind: verified.kind, name: verified.name, groups: verified.groups, address, tokenAccess: verified.access, expiresAt: verified.expiresAt };
}

function fromCertificate(certificate: ClientCertificate | undefined, address: string): Identity {
  if (certificate === undefined) return anonymousIdentity(address);
  // A certificate without a CN is still a verified client; its fingerprint names it.
  const name = certificate.subjectCN !== undefined && certificate.subjectCN.length > 0 ? certificate.subjectCN : certificate.fingerprint256;
  return { kind: 'certificate', name, groups: NO_GROUPS, address };
}

function decodeBasic(value: string): { user: string; password: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return undefined;
  const text = Buffer.from(value, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  // The user name cannot hold ':' (RFC 7617); the password can.
  if (colon <= 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * For the outcome event of a failure only: the kind the credential claimed to be. A token's
 * claim is read unverified, but only an enum value is ever used.
 */
function claimedKind(scheme: string, value: string): IdentityKind {
  if (scheme === 'basic') return 'user';
  if (scheme !== 'bearer') return 'anonymous';
  if (!JWT_SHAPE.test(value)) return 'machine';
  try {
    const kind = (decodeJwt(value)['wharf'] as { kind?: unknown } | undefined)?.kind;
    return isIdentityKind(kind) ? kind : 'user';
  } catch {
    return 'user';
  }
}
