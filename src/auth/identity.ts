// Who a request comes from, as the authenticator decided it. Access rules and the token service
// read nothing else about the caller, so every way in (password, token, certificate, network)
// ends in this one small shape.
import type { ResourceAccess } from './scope.ts';

export type IdentityKind = 'anonymous' | 'user' | 'machine' | 'certificate';

export interface Identity {
  readonly kind: IdentityKind;
  /** htpasswd user, static-token machine name or certificate subject CN; absent when anonymous. */
  readonly name?: string;
  readonly groups: readonly string[];
  /** The client's IP address as the socket reports it (IPv4-mapped IPv6 allowed). */
  readonly address: string;
  /**
   * Present only when the request carried a wharf token: what that token grants, by the names
   * the client asked for. The token's access claim is the grant (distribution `spec/auth/jwt.md`),
   * so the request path checks it as well as the rules.
   */
  readonly tokenAccess?: readonly ResourceAccess[];
  /** For a wharf token: when it expires (ms since the epoch); the identity is not valid after. */
  readonly expiresAt?: number;
}

const NO_GROUPS: readonly string[] = Object.freeze([]);

export function anonymousIdentity(address: string): Identity {
  return { kind: 'anonymous', groups: NO_GROUPS, address };
}

export const IDENTITY_KINDS: readonly IdentityKind[] = Object.freeze(['anonymous', 'user', 'machine', 'certificate']);

export function isIdentityKind(value: unknown): value is IdentityKind {
  return typeof value === 'string' && (IDENTITY_KINDS as readonly string[]).includes(value);
}

/** For the access log (beside the client's address): `user:alice`, `machine:ci`, `certificate:node-1`, `anonymous`. */
export function describeIdentity(identity: Identity | undefined): string | undefined {
  if (identity === undefined) return undefined;
  return identity.kind === 'anonymous' ? 'anonymous' : `${identity.kind}:${identity.name ?? ''}`;
}
