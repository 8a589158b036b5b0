import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ExpiredTokenError,
  TokenAlgorithmError,
  TokenAudienceError,
  TokenIssuerError,
  TokenMalformedError,
  TokenNotYetValidError,
  TokenSignatureError,
  UnknownServiceError,
} from '../../src/auth/auth-errors.ts';
import { anonymousIdentity, type Identity } from '../../src/auth/identity.ts';
import { parseScopes } from '../../src/auth/scope.ts';
import { TokenKeys } from '../../src/auth/token-keys.ts';
import { TokenService, type Grant } from '../../src/auth/token-service.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

let dir: TempDir;
let keysA: TokenKeys;
let keysB: TokenKeys;
let keysEc: TokenKeys;
beforeAll(async () => {
  dir = await makeTempDir('wharf-token-service-');
  keysA = await TokenKeys.load({ signingKeyFile: join(dir.path, 'a.key') });
  keysB = await TokenKeys.load({ signingKeyFile: join(dir.path, 'b.key') });
  keysEc = await TokenKeys.load({ signingKeyFile: join(dir.path, 'ec.key'), algorithm: 'ES256' });
});
afterAll(() => dir.cleanup());

const OPTIONS = { issuer: 'wharf-test', service: 'wharf.example', ttlSeconds: 300 };
const alice: Identity = { kind: 'user', name: 'alice', groups: ['acme'], address: '10.0.0.1' };
const pullOnly: Grant = (scope) => (scope.type === 'repository' ? ['pull'] : []);

/** A clock the test moves. */
function clock(start = Date.parse('2026-03-01T12:00:00Z')) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('expected a rejection'),
    (e: unknown) => e,
  );
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('TokenService.issue', () => {
  it('answers as the Docker token endpoint does, with the spec claims', async () => {
    const c = clock();
    const service = new TokenService(OPTIONS, keysA, c.now);
    const scopes = parseScopes(['repository:library/alpine:pull,push', 'repository:ghcr.io/acme/app:pull', 'registry:catalog:*']);
    const answer = await service.issue(alice, 'wharf.example', scopes, pullOnly);
    expect(answer.access_token).toBe(answer.token);
    expect(answer.expires_in).toBe(300);
    expect(answer.issued_at).toBe('2026-03-01T12:00:00.000Z');
    expect(decodeProtectedHeader(answer.token)).toEqual({ alg: 'EdDSA', kid: keysA.signing.kid, typ: 'JWT' });
    const claims = decodeJwt(answer.token);
    const iat = Date.parse('2026-03-01T12:00:00Z') / 1000;
    expect(claims).toMatchObject({ iss: 'wharf-test', sub: 'alice', aud: 'wharf.example', iat, exp: iat + 300 });
    expect(claims.nbf).toBeLessThanOrEqual(iat);
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // The intersection of what was asked and what grant allows; nothing granted, nothing listed.
    expect(claims['access']).toEqual([
      { type: 'repository', name: 'library/alpine', actions: ['pull'] },
      { type: 'repository', name: 'ghcr.io/acme/app', actions: ['pull'] },
    ]);
  });

  it('never grants more than was asked, whatever grant returns', async () => {
    const service = new TokenService(OPTIONS, keysA);
    const generous: Grant = () => ['pull', 'push', 'delete', '*'];
    const { token } = await service.issue(alice, undefined, parseScopes(['repository:a:pull']), generous);
    expect(decodeJwt(token)['access']).toEqual([{ type: 'repository', name: 'a', actions: ['pull'] }]);
  });

  it('issues a token with empty access when nothing is granted, and a fresh jti each time', async () => {
    const service = new TokenService(OPTIONS, keysA);
    const one = await service.issue(anonymousIdentity('10.0.0.9'), undefined, parseScopes(['repository:a:pull']), () => []);
    const two = await service.issue(anonymousIdentity('10.0.0.9'), undefined, [], pullOnly);
    expect(decodeJwt(one.token)['access']).toEqual([]);
    expect(decodeJwt(one.token).sub).toBe('');
    expect(decodeJwt(one.token).jti).not.toBe(decodeJwt(two.token).jti);
  });

  it('refuses a token for another service', async () => {
    const service = new TokenService(OPTIONS, keysA);
    await expect(service.issue(alice, 'registry.docker.io', [], pullOnly)).rejects.toBeInstanceOf(UnknownServiceError);
  });
});

describe('TokenService.verify', () => {
  it('gives back who the token was issued to and what it grants', async () => {
    const service = new TokenService(OPTIONS, keysA);
    const { token } = await service.issue(alice, undefined, parseScopes(['repository:library/alpine:pull']), pullOnly);
    const verified = await service.verify(token);
    expect(verified).toMatchObject({
      kind: 'user',
      name: 'alice',
      groups: ['acme'],
      access: [{ type: 'repository', name: 'library/alpine', actions: ['pull'] }],
    });
    const anon = await service.verify((await service.issue(anonymousIdentity('::1'), undefined, [], pullOnly)).token);
    expect(anon.kind).toBe('anonymous');
    expect(anon.name).toBeUndefined();
  });

  it('verifies ES256 tokens as well', async () => {
    const service = new TokenService(OPTIONS, keysEc);
    const { token } = await service.issue(alice, undefined, parseScopes(['repository:a:pull']), pullOnly);
    expect(decodeProtectedHeader(token).alg).toBe('ES256');
    expect((await service.verify(token)).name).toBe('alice');
  });

  it('remembers a verified token: a repeat is a lookup that returns the same object', async () => {
    const service = new TokenService(OPTIONS, keysA);
    const { token } = await service.issue(alice, undefined, parseScopes(['repository:a:pull']), pullOnly);
    expect(service.cached(token)).toBeUndefined();
    const first = await service.verify(token);
    expect(service.cached(token)).toBe(first);
    for (let i = 0; i < 1000; i++) expect(await service.verify(token)).toBe(first);
    expect(Object.isFrozen(first) && Object.isFrozen(first.access) && Object.isFrozen(first.groups)).toBe(true);
  });

  it('bounds how many verified tokens it remembers', async () => {
    const service = new TokenService({ ...OPTIONS, cacheMax: 2 }, keysA);
    const tokens = await Promise.all([1, 2, 3].map(() => service.issue(alice, undefined, [], pullOnly).then((a) => a.token)));
    for (const token of tokens) await service.verify(token);
    expect(service.cached(tokens[0]!)).toBeUndefined();
    expect(service.cached(tokens[2]!)).toBeDefined();
  });

  it('refuses an expired token, also one it verified and remembered before', async () => {
    const c = clock();
    const service = new TokenService({ ...OPTIONS, ttlSeconds: 60 }, keysA, c.now);
    const { token } = await service.issue(alice, undefined, [], pullOnly);
    await service.verify(token);
    c.advance(59_000);
    expect(service.cached(token)).toBeDefined();
    await service.verify(token);
    c.advance(1_000);
    expect(service.cached(token)).toBeUndefined();
    expect(await rejection(service.verify(token))).toBeInstanceOf(ExpiredTokenError);
    // Also for a service that never saw it before.
    expect(await rejection(new TokenService(OPTIONS, keysA, c.now).verify(token))).toBeInstanceOf(ExpiredTokenError);
  });

  it('refuses a token before its nbf (a clock far behind the issuer)', async () => {
    const issuer = clock();
    const { token } = await new TokenService(OPTIONS, keysA, issuer.now).issue(alice, undefined, [], pullOnly);
    const behind = clock(issuer.now() - 10_000);
    expect((await new TokenService(OPTIONS, keysA, behind.now).verify(token)).name).toBe('alice');
    const farBehind = clock(issuer.now() - 120_000);
    expect(await rejection(new TokenService(OPTIONS, keysA, farBehind.now).verify(token))).toBeInstanceOf(TokenNotYetValidError);
  });

  it('refuses a token signed by a key it does not accept', async () => {
    const { token } = await new TokenService(OPTIONS, keysB).issue(alice, undefined, [], pullOnly);
    const error = await rejection(new TokenService(OPTIONS, keysA).verify(token));
    expect(error).toBeInstanceOf(TokenSignatureError);
  });

  it('refuses a token signed by another key under the accepted kid', async () => {
    const forged = await new SignJWT(decodeJwt((await new TokenService(OPTIONS, keysA).issue(alice, undefined, [], pullOnly)).token))
      .setProtectedHeader({ alg: 'EdDSA', kid: keysA.signing.kid, typ: 'JWT' })
      .sign(keysB.signing.privateKey);
    expect(await rejection(new TokenService(OPTIONS, keysA).verify(forged))).toBeInstanceOf(TokenSignatureError);
  });

  it('refuses a tampered payload, and does not remember the failure', async () => {
    const service = new TokenService(OPTIONS, keysA);
    const { token } = await service.issue(alice, undefined, parseScopes(['repository:a:pull']), pullOnly);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    claims.access = [{ type: 'repository', name: 'secret/thing', actions: ['pull'] }];
    const tampered = `${header}.${b64(claims)}.${signature}`;
    expect(await rejection(service.verify(tampered))).toBeInstanceOf(TokenSignatureError);
    expect(service.cached(tampered)).toBeUndefined();
    expect(await rejection(service.verify(tampered))).toBeInstanceOf(TokenSignatureError);
  });

  it('refuses a token for another audience or from another issuer', async () => {
    const { token } = await new TokenService(OPTIONS, keysA).issue(alice, undefined, [], pullOnly);
    expect(await rejection(new TokenService({ ...OPTIONS, service: 'other.example' }, keysA).verify(token))).toBeInstanceOf(
      TokenAudienceError,
    );
    expect(await rejection(new TokenService({ ...OPTIONS, issuer: 'someone-else' }, keysA).verify(token))).toBeInstanceOf(
      TokenIssuerError,
    );
  });

  it("refuses alg 'none', crafted by hand", async () => {
    const service = new TokenService(OPTIONS, keysA);
    const { token } = await service.issue(alice, undefined, [], pullOnly);
    const claims = decodeJwt(token);
    for (const header of [{ alg: 'none', typ: 'JWT', kid: keysA.signing.kid }, { alg: 'none' }, { alg: 'None', kid: keysA.signing.kid }]) {
      const unsigned = `${b64(header)}.${b64(claims)}.`;
      expect(await rejection(service.verify(unsigned))).toBeInstanceOf(TokenAlgorithmError);
    }
  });

  it('refuses any algorithm but the key’s own (HMAC with the public key, ES256 on an Ed25519 kid)', async () => {
    const service = new TokenService(OPTIONS, keysA);
    const claims = decodeJwt((await service.issue(alice, undefined, [], pullOnly)).token);
    const publicPem = keysA.signing.publicKey.export({ format: 'pem', type: 'spki' }) as string;
    const hs256Header = b64({ alg: 'HS256', typ: 'JWT', kid: keysA.signing.kid });
    const body = `${hs256Header}.${b64(claims)}`;
    const confused = `${body}.${createHmac('sha256', publicPem).update(body).digest('base64url')}`;
    expect(await rejection(service.verify(confused))).toBeInstanceOf(TokenAlgorithmError);
    const wrongAlg = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: keysA.signing.kid })
      .sign(keysEc.signing.privateKey);
    expect(await rejection(service.verify(wrongAlg))).toBeInstanceOf(TokenAlgorithmError);
  });

  it.each(['', 'abc', 'a.b', 'a.b.c', `${b64({ alg: 'EdDSA' })}.e30.sig`, `${b64({ alg: 'EdDSA', kid: 'k' })}.e30`])(
    'refuses the malformed token %j',
    async (token) => {
      expect(await rejection(new TokenService(OPTIONS, keysA).verify(token))).toBeInstanceOf(TokenMalformedError);
    },
  );

  it('refuses a correctly signed token whose claims are not the shape wharf issues', async () => {
    const service = new TokenService(OPTIONS, keysA);
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA', kid: keysA.signing.kid })
        .setIssuer(OPTIONS.issuer)
        .setAudience(OPTIONS.service)
        .setSubject('alice')
        .setIssuedAt()
        .setNotBefore('0s')
        .setExpirationTime('1m')
        .setJti('j')
        .sign(keysA.signing.privateKey);
    const wharf = { kind: 'user', groups: [] };
    for (const claims of [
      { access: [] },
      { access: [], wharf: { kind: 'admin', groups: [] } },
      { access: [], wharf: { kind: 'user', groups: 'acme' } },
      { access: 'all', wharf },
      { access: [{ type: 'blob', name: 'a', actions: ['pull'] }], wharf },
      { access: [{ type: 'repository', name: 'a', actions: 'pull' }], wharf },
    ]) {
      expect(await rejection(service.verify(await sign(claims)))).toBeInstanceOf(TokenMalformedError);
    }
    expect((await service.verify(await sign({ access: [], wharf }))).name).toBe('alice');
  });

  it('keeps accepting tokens of a rotated-out key while it is listed, not after it is removed', async () => {
    const oldKeyFile = join(dir.path, 'rotate-old.key');
    const newKeyFile = join(dir.path, 'rotate-new.key');
    const before = await TokenKeys.load({ signingKeyFile: oldKeyFile });
    const { token: oldToken } = await new TokenService(OPTIONS, before).issue(alice, undefined, [], pullOnly);

    const during = await TokenKeys.load({ signingKeyFile: newKeyFile, previousKeyFiles: [oldKeyFile] });
    const rotating = new TokenService(OPTIONS, during);
    expect((await rotating.verify(oldToken)).name).toBe('alice');
    const { token: newToken } = await rotating.issue(alice, undefined, [], pullOnly);
    expect(decodeProtectedHeader(newToken).kid).toBe(during.signing.kid);
    expect(during.signing.kid).not.toBe(before.signing.kid);

    const after = new TokenService(OPTIONS, await TokenKeys.load({ signingKeyFile: newKeyFile }));
    expect(await rejection(after.verify(oldToken))).toBeInstanceOf(TokenSignatureError);
    expect((await after.verify(newToken)).name).toBe('alice');
  });
});
