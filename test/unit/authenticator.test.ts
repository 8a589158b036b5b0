import { hash } from '@node-rs/bcrypt';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadCredentialsError, ExpiredTokenError, TokenSignatureError } from '../../src/auth/auth-errors.ts';
import type { AuthOutcome } from '../../src/auth/auth-outcome.ts';
import { Authenticator, type AuthenticatorParts, type RequestCredentials } from '../../src/auth/authenticator.ts';
import { HtpasswdUsers } from '../../src/auth/htpasswd.ts';
import type { IdentityKind } from '../../src/auth/identity.ts';
import { parseScopes } from '../../src/auth/scope.ts';
import { sha256Hex, StaticTokens } from '../../src/auth/static-tokens.ts';
import { TokenKeys } from '../../src/auth/token-keys.ts';
import { TokenService } from '../../src/auth/token-service.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

const ADDRESS = '::ffff:10.1.2.3';
const PASSWORD = 'pässword:with:colons';
const MACHINE_TOKEN = 'node.pool.token.that.has.dots';
const NODE_TOKEN = 'nodes-static-token-0123456789';

let dir: TempDir;
let htpasswd: HtpasswdUsers;
let keys: TokenKeys;
let otherKeys: TokenKeys;
let machines: StaticTokens;
let now = Date.parse('2026-03-01T12:00:00Z');
let tokens: TokenService;

beforeAll(async () => {
  dir = await makeTempDir('wharf-authenticator-');
  const file = join(dir.path, 'htpasswd');
  await writeFile(file, `alice:${(await hash(PASSWORD, 4)).replace('$2b$', '$2y$')}\n`);
  htpasswd = await HtpasswdUsers.open({ path: file, groups: { acme: ['alice'] } });
  keys = await TokenKeys.load({ signingKeyFile: join(dir.path, 'token.key') });
  otherKeys = await TokenKeys.load({ signingKeyFile: join(dir.path, 'other.key') });
  machines = await StaticTokens.load({
    machines: { 'node-pool': { sha256: sha256Hex(MACHINE_TOKEN), groups: ['nodes'] }, nodes: { sha256: sha256Hex(NODE_TOKEN) } },
  });
  tokens = new TokenService({ issuer: 'wharf', service: 'wharf.example', ttlSeconds: 60 }, keys, () => now);
});
afterAll(async () => {
  htpasswd.close();
  await dir.cleanup();
});

function authenticator(parts: Partial<AuthenticatorParts> = {}) {
  const events: [AuthOutcome, IdentityKind][] = [];
  const auth = new Authenticator({ htpasswd, tokens, machines, onOutcome: (result, kind) => events.push([result, kind]), ...parts });
  return { auth, events };
}

const request = (authorization?: string, certificate?: RequestCredentials['certificate']): RequestCredentials => ({
  authorization,
  certificate,
  address: ADDRESS,
});
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => expect.unreachable('expected a rejection'),
    (e: unknown) => e as Error,
  );
}

describe('Authenticator', () => {
  it('without credentials: anonymous, with the address', async () => {
    const { auth, events } = authenticator();
    expect(await auth.authenticate(request())).toEqual({ kind: 'anonymous', groups: [], address: ADDRESS });
    expect(await auth.authenticate(request('   '))).toMatchObject({ kind: 'anonymous' });
    expect(events).toEqual([
      ['ok', 'anonymous'],
      ['ok', 'anonymous'],
    ]);
  });

  it('with a verified client certificate: its subject CN, else its fingerprint', async () => {
    const { auth } = authenticator();
    expect(await auth.authenticate(request(undefined, { subjectCN: 'node-1.example', fingerprint256: 'AA:BB' }))).toEqual({
      kind: 'certificate',
      name: 'node-1.example',
      groups: [],
      address: ADDRESS,
    });
    expect(await auth.authenticate(request(undefined, { subjectCN: undefined, fingerprint256: 'AA:BB' }))).toMatchObject({
      kind: 'certificate',
      name: 'AA:BB',
    });
    // The TLS layer reports a certificate without a CN as ''.
    expect(await auth.authenticate({ address: ADDRESS, certificate: { subjectCN: '', fingerprint256: 'CC:DD' } })).toMatchObject({
      kind: 'certificate',
      name: 'CC:DD',
    });
  });

  it('Basic: an htpasswd user with its groups', async () => {
    const { auth, events } = authenticator();
    expect(await auth.authenticate(request(basic('alice', PASSWORD)))).toEqual({ kind: 'user', name: 'alice', groups: ['acme'], address: ADDRESS });
    expect(await auth.authenticate(request(basic('alice', PASSWORD).replace('Basic', 'basic')))).toMatchObject({ name: 'alice' });
    expect(events).toEqual([
      ['ok', 'user'],
      ['ok', 'user'],
    ]);
  });

  it('Basic: a wrong password, an unknown user or a broken header is BadCredentials, naming no secret', async () => {
    const { auth, events } = authenticator();
    for (const header of [
      basic('alice', 'wrong'),
      basic('Alice', PASSWORD),
      basic('mallory', PASSWORD),
      'Basic !!!not-base64!!!',
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
      `Basic ${Buffer.from(`:${PASSWORD}`).toString('base64')}`,
      'Basic',
    ]) {
      const error = await failure(auth.authenticate(request(header)));
      expect(error).toBeInstanceOf(BadCredentialsError);
      expect(error.message).not.toContain(PASSWORD);
      expect(error.message).not.toContain('alice');
      expect(JSON.stringify((error as BadCredentialsError).detail ?? null)).not.toContain(PASSWORD);
    }
    expect(events.every(([result, kind]) => result === 'bad-credentials' && kind === 'user')).toBe(true);
    expect(events).toHaveLength(7);
  });

  it('credentials decide over a certificate: a bad password is not silently the certificate', async () => {
    const { auth } = authenticator();
    const cert = { subjectCN: 'node-1.example', fingerprint256: 'AA:BB' };
    expect(await failure(auth.authenticate(request(basic('alice', 'wrong'), cert)))).toBeInstanceOf(BadCredentialsError);
    expect(await auth.authenticate(request(basic('alice', PASSWORD), cert))).toMatchObject({ kind: 'user' });
  });

  it('Bearer: a wharf token, with what it grants', async () => {
    const { auth, events } = authenticator();
    const { token } = await tokens.issue(
      { kind: 'user', name: 'alice', groups: ['acme'], address: ADDRESS },
      undefined,
      parseScopes(['repository:library/alpine:pull']),
      () => ['pull'],
    );
    expect(await auth.authenticate({ authorization: `Bearer ${token}`, certificate: undefined, address: '10.9.9.9' })).toEqual({
      kind: 'user',
      name: 'alice',
      groups: ['acme'],
      address: '10.9.9.9',
      tokenAccess: [{ type: 'repository', name: 'library/alpine', actions: ['pull'] }],
      // ttlSeconds 60 from the service's clock: the identity ends with its token.
      expiresAt: Math.floor(now / 1000) * 1000 + 60_000,
    });
    expect(events).toEqual([['ok', 'user']]);
  });

  it('Bearer: an expired wharf token is ExpiredToken, counted as expired', async () => {
    const { auth, events } = authenticator();
    const { token } = await tokens.issue({ kind: 'machine', name: 'node-pool', groups: [], address: ADDRESS }, undefined, [], () => []);
    now += 61_000;
    try {
      const error = await failure(auth.authenticate(request(`Bearer ${token}`)));
      expect(error).toBeInstanceOf(ExpiredTokenError);
      expect(error.message).not.toContain(token);
    } finally {
      now -= 61_000;
    }
    expect(events).toEqual([['expired', 'machine']]);
  });

  it('Bearer: a token wharf did not sign is BadCredentials, with the reason as its cause', async () => {
    const { auth, events } = authenticator();
    const foreign = new TokenService({ issuer: 'wharf', service: 'wharf.example' }, otherKeys, () => now);
    const { token } = await foreign.issue({ kind: 'user', name: 'alice', groups: [], address: ADDRESS }, undefined, [], () => []);
    const error = await failure(auth.authenticate(request(`Bearer ${token}`)));
    expect(error).toBeInstanceOf(BadCredentialsError);
    expect(error.cause).toBeInstanceOf(TokenSignatureError);
    expect(error.message).not.toContain(token);
    expect(events).toEqual([['bad-credentials', 'user']]);
  });

  it('Bearer: a static machine token, also one shaped like a JWT', async () => {
    const { auth, events } = authenticator();
    expect(await auth.authenticate(request(`Bearer ${NODE_TOKEN}`))).toEqual({ kind: 'machine', name: 'nodes', groups: [], address: ADDRESS });
    expect(await auth.authenticate(request(`Bearer ${MACHINE_TOKEN}`))).toEqual({
      kind: 'machine',
      name: 'node-pool',
      groups: ['nodes'],
      address: ADDRESS,
    });
    expect(events).toEqual([
      ['ok', 'machine'],
      ['ok', 'machine'],
    ]);
  });

  it('Bearer: an unknown token is BadCredentials, naming no token', async () => {
    const { auth, events } = authenticator();
    for (const header of ['Bearer not-a-known-token', 'Bearer', 'Bearer a.b.c']) {
      const error = await failure(auth.authenticate(request(header)));
      expect(error).toBeInstanceOf(BadCredentialsError);
      expect(error.message).not.toContain('not-a-known-token');
    }
    expect(events.map(([result]) => result)).toEqual(['bad-credentials', 'bad-credentials', 'bad-credentials']);
  });

  it('refuses schemes it cannot check, and credentials nothing is configured for', async () => {
    const { auth } = authenticator();
    expect(await failure(auth.authenticate(request('Digest username="alice"')))).toBeInstanceOf(BadCredentialsError);
    const bare = new Authenticator({});
    expect(await failure(bare.authenticate(request(basic('alice', PASSWORD))))).toBeInstanceOf(BadCredentialsError);
    expect(await failure(bare.authenticate(request(`Bearer ${NODE_TOKEN}`)))).toBeInstanceOf(BadCredentialsError);
    expect(await bare.authenticate(request())).toMatchObject({ kind: 'anonymous' });
  });
});

describe('the per-request cost once a token is issued', () => {
  it('hashes no password for requests bearing the token: bcrypt runs at /token only', async () => {
    const file = join(dir.path, 'counted-htpasswd');
    await writeFile(file, `carol:${await hash('carol-pw', 4)}\n`);
    let bcrypts = 0;
    const counted = await HtpasswdUsers.open({ path: file }, { compare: async (password, stored) => (bcrypts++, (await import('@node-rs/bcrypt')).verify(password, stored)) });
    try {
      const { auth } = authenticator({ htpasswd: counted });
      // The login: one bcrypt.
      const user = await auth.authenticate(request(basic('carol', 'carol-pw')));
      expect(bcrypts).toBe(1);
      const issued = await tokens.issue(user, 'wharf.example', parseScopes(['repository:team/app:pull']), () => ['pull']);
      for (let i = 0; i < 50; i++) {
        const identity = await auth.authenticate(request(`Bearer ${issued.token}`));
        expect(identity).toMatchObject({ kind: 'user', name: 'carol' });
        expect(auth.authenticateNow(request(`Bearer ${issued.token}`))).toMatchObject({ name: 'carol' });
      }
      expect(bcrypts).toBe(1);
    } finally {
      counted.close();
    }
  });
});
