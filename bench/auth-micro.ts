// Per-request costs of client auth, in ns/op, run by hand: `node bench/auth-micro.ts`.
// What it shows: a repeated token is a cache lookup, rule evaluation is a few regex tests, and
// a cached Basic check is one HMAC; a cold token verify and a bcrypt are for comparison.
import { hash } from '@node-rs/bcrypt';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessRules } from '../src/auth/access-rules.ts';
import { Authenticator } from '../src/auth/authenticator.ts';
import { HtpasswdUsers } from '../src/auth/htpasswd.ts';
import type { Identity } from '../src/auth/identity.ts';
import { parseScopes } from '../src/auth/scope.ts';
import { sha256Hex, StaticTokens } from '../src/auth/static-tokens.ts';
import { TokenKeys } from '../src/auth/token-keys.ts';
import { TokenService } from '../src/auth/token-service.ts';

async function measure(name: string, iterations: number, op: () => unknown): Promise<void> {
  for (let i = 0; i < Math.min(iterations, 1000); i++) await op();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await op();
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  console.log(`${name.padEnd(48)} ${ns.toFixed(0).padStart(10)} ns/op`);
}

function measureSync(name: string, iterations: number, op: () => unknown): void {
  for (let i = 0; i < Math.min(iterations, 10_000); i++) op();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) op();
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  console.log(`${name.padEnd(48)} ${ns.toFixed(0).padStart(10)} ns/op`);
}

const dir = await mkdtemp(join(tmpdir(), 'wharf-auth-bench-'));
try {
  const keys = await TokenKeys.load({ signingKeyFile: join(dir, 'token.key') });
  const tokens = new TokenService({ issuer: 'wharf', service: 'wharf.bench' }, keys);
  const alice: Identity = { kind: 'user', name: 'alice', groups: ['acme'], address: '10.1.2.3' };
  const scopes = parseScopes(['repository:library/alpine:pull']);
  const { token } = await tokens.issue(alice, undefined, scopes, () => ['pull']);

  const rules = new AccessRules([
    { repositories: ['docker.io/library/**', 'registry.k8s.io/**'], anonymous: true },
    { repositories: ['ghcr.io/acme/**'], groups: ['acme'] },
    { repositories: ['ghcr.io/other/**'], users: ['bob'] },
    { repositories: ['quay.io/team-*/**'], networks: ['10.0.0.0/8', 'fd00::/8'] },
    { repositories: ['docker.io/bitnami/*'], machines: ['nodes'] },
    { repositories: ['gcr.io/**'], certificates: ['node-1'] },
    { repositories: ['**'], networks: ['192.168.0.0/16'] },
  ]);

  await writeFile(join(dir, 'htpasswd'), `alice:${await hash('secret', 10)}\n`);
  const htpasswd = await HtpasswdUsers.open({ path: join(dir, 'htpasswd') });
  const machines = await StaticTokens.load({ machines: { nodes: { sha256: sha256Hex('static-token-0123456789') } } });
  const auth = new Authenticator({ htpasswd, tokens, machines });
  const bearer = { authorization: `Bearer ${token}`, certificate: undefined, address: '10.1.2.3' };
  const basic = { authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}`, certificate: undefined, address: '10.1.2.3' };

  await tokens.verify(token);
  measureSync('token: cached() hit', 1_000_000, () => tokens.cached(token));
  await measure('token: verify() hit (await)', 1_000_000, () => tokens.verify(token));
  const fresh = await Promise.all(Array.from({ length: 3_000 }, () => tokens.issue(alice, undefined, scopes, () => ['pull'])));
  let next = 0;
  await measure('token: verify() miss (signature check)', 2_000, () => tokens.verify(fresh[next++]!.token));
  await measure('authenticate: Bearer, cached token', 500_000, () => auth.authenticate(bearer));
  await measure('authenticate: Bearer, static machine token', 500_000, () =>
    auth.authenticate({ ...bearer, authorization: 'Bearer static-token-0123456789' }),
  );
  await measure('authenticate: Basic, cached bcrypt (HMAC)', 200_000, () => auth.authenticate(basic));
  await measure('htpasswd: bcrypt cost 10, uncached (wrong password)', 20, () => htpasswd.verify('alice', 'wrong'));
  measureSync('rules: allowed, first rule', 2_000_000, () => rules.allowed(alice, 'docker.io/library/alpine', 'pull'));
  measureSync('rules: allowed, group rule', 2_000_000, () => rules.allowed(alice, 'ghcr.io/acme/app', 'pull'));
  measureSync('rules: allowed, network rule', 2_000_000, () => rules.allowed(alice, 'quay.io/team-a/app', 'pull'));
  measureSync('rules: denied by the catch-all', 2_000_000, () => rules.allowed(alice, 'ghcr.io/x/y', 'pull'));
  htpasswd.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
