// Digest grammar (image-spec descriptor.md) and the algorithms wharf can verify.
import { createHash } from 'node:crypto';
import { DigestInvalidError } from '../errors.ts';

const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const ENCODED_BY_ALGORITHM: Readonly<Record<string, RegExp>> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

export interface Digest {
  readonly algorithm: 'sha256' | 'sha512';
  readonly hex: string;
  /** The canonical "algorithm:hex" string. */
  readonly value: string;
}

/** True when the string has the shape of a digest (may still use an unsupported algorithm). */
export function looksLikeDigest(s: string): boolean {
  return DIGEST_GRAMMAR.test(s);
}

/** Parses a digest wharf can verify; anything else is DIGEST_INVALID (400). */
export function parseDigest(s: string): Digest {
  if (!DIGEST_GRAMMAR.test(s)) throw new DigestInvalidError(s, 'invalid digest format');
  const colon = s.indexOf(':');
  const algorithm = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  const encoded = ENCODED_BY_ALGORITHM[algorithm];
  if (!encoded) throw new DigestInvalidError(s, `unsupported digest algorithm ${algorithm}`);
  if (!encoded.test(hex)) throw new DigestInvalidError(s, `invalid ${algorithm} digest`);
  return { algorithm: algorithm as Digest['algorithm'], hex, value: s };
}

/** True when the string is a digest wharf can verify (parseDigest would accept it). */
export function isSupportedDigest(s: string): boolean {
  const encoded = DIGEST_GRAMMAR.test(s) ? ENCODED_BY_ALGORITHM[s.slice(0, s.indexOf(':'))] : undefined;
  return encoded !== undefined && encoded.test(s.slice(s.indexOf(':') + 1));
}

export function digestOf(bytes: Uint8Array, algorithm: Digest['algorithm'] = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
