import { calculateJwkThumbprint, type JWK } from 'jose';
import { generateKeyPairSync } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SigningKeyError, TokenKeys } from '../../src/auth/token-keys.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

let dir: TempDir;
beforeEach(async () => {
  dir = await makeTempDir('wharf-token-keys-');
});
afterEach(() => dir.cleanup());

function pem(kind: 'ed25519' | 'p256' | 'p384' | 'rsa'): { privatePem: string; publicPem: string } {
  const pair =
    kind === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : kind === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ec', { namedCurve: kind === 'p256' ? 'P-256' : 'P-384' });
  return {
    privatePem: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    publicPem: pair.publicKey.export({ format: 'pem', type: 'spki' }) as string,
  };
}

describe('TokenKeys', () => {
  it('generates an Ed25519 key on first start, mode 0600, leaving no temp file, and reuses it after', async () => {
    const file = join(dir.path, 'keys', 'token.key');
    const first = await TokenKeys.load({ signingKeyFile: file });
    expect(first.generated).toBe(true);
    expect(first.signing.alg).toBe('EdDSA');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(await readdir(join(dir.path, 'keys'))).toEqual(['token.key']);
    const second = await TokenKeys.load({ signingKeyFile: file });
    expect(second.generated).toBe(false);
    expect(second.signing.kid).toBe(first.signing.kid);
  });

  it('generates an EC P-256 key when ES256 is asked for', async () => {
    const keys = await TokenKeys.load({ signingKeyFile: join(dir.path, 'token.key'), algorithm: 'ES256' });
    expect(keys.signing.alg).toBe('ES256');
    expect(keys.signing.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('lets concurrent first starts agree on one key', async () => {
    const file = join(dir.path, 'token.key');
    const loads = await Promise.all(Array.from({ length: 6 }, () => TokenKeys.load({ signingKeyFile: file })));
    expect(new Set(loads.map((k) => k.signing.kid)).size).toBe(1);
    expect(loads.filter((k) => k.generated)).toHaveLength(1);
    expect(await readdir(dir.path)).toEqual(['token.key']);
  });

  it('loads existing Ed25519 and P-256 keys; kid is the RFC 7638 thumbprint of the public key', async () => {
    for (const [kind, alg] of [['ed25519', 'EdDSA'], ['p256', 'ES256']] as const) {
      const file = join(dir.path, `${kind}.key`);
      await writeFile(file, pem(kind).privatePem);
      const keys = await TokenKeys.load({ signingKeyFile: file });
      expect(keys.generated).toBe(false);
      expect(keys.signing.alg).toBe(alg);
      const jwk = keys.signing.publicKey.export({ format: 'jwk' }) as JWK;
      expect(keys.signing.kid).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
    }
  });

  it('refuses other key types and a configured algorithm the file does not have', async () => {
    for (const kind of ['rsa', 'p384'] as const) {
      const file = join(dir.path, `${kind}.key`);
      await writeFile(file, pem(kind).privatePem);
      await expect(TokenKeys.load({ signingKeyFile: file })).rejects.toThrow(/unsupported key type .*use Ed25519 or EC P-256/);
    }
    const file = join(dir.path, 'ed.key');
    await writeFile(file, pem('ed25519').privatePem);
    await expect(TokenKeys.load({ signingKeyFile: file, algorithm: 'ES256' })).rejects.toThrow('holds an EdDSA key');
  });

  it('refuses a file that is not a private key', async () => {
    const file = join(dir.path, 'token.key');
    await writeFile(file, pem('ed25519').publicPem);
    await expect(TokenKeys.load({ signingKeyFile: file })).rejects.toBeInstanceOf(SigningKeyError);
    await writeFile(file, 'garbage');
    await expect(TokenKeys.load({ signingKeyFile: file })).rejects.toThrow('not a PEM private key');
  });

  it('accepts previous keys, public or private, for verification only', async () => {
    const old1 = pem('ed25519');
    const old2 = pem('p256');
    await writeFile(join(dir.path, 'old1.pub'), old1.publicPem);
    await writeFile(join(dir.path, 'old2.key'), old2.privatePem);
    const keys = await TokenKeys.load({
      signingKeyFile: join(dir.path, 'token.key'),
      previousKeyFiles: [join(dir.path, 'old1.pub'), join(dir.path, 'old2.key'), join(dir.path, 'old1.pub')],
    });
    expect(keys.verification.size).toBe(3);
    expect(keys.verification.get(keys.signing.kid)).toBe(keys.signing);
    expect([...keys.verification.values()].map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'EdDSA']);
    const jwks = keys.jwks();
    expect(jwks.keys).toHaveLength(3);
    for (const jwk of jwks.keys) {
      expect(jwk.d).toBeUndefined();
      expect(jwk.use).toBe('sig');
      expect(await calculateJwkThumbprint(jwk, 'sha256')).toBe(jwk.kid);
    }
  });

  it('refuses a listed previous key file that is missing', async () => {
    await expect(
      TokenKeys.load({ signingKeyFile: join(dir.path, 'token.key'), previousKeyFiles: [join(dir.path, 'gone.pub')] }),
    ).rejects.toThrow(/gone\.pub: cannot read: ENOENT/);
  });
});
