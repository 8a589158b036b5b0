// The gate's answers that the end-to-end tests cannot easily provoke: the challenge's realm when
// the Host header is hostile, and refusal shapes per kind of caller.
import { describe, expect, it } from 'vitest';
import { AccessGate, DeniedError } from '../../src/auth/access-gate.ts';
import { AccessRules } from '../../src/auth/access-rules.ts';
import { anonymousIdentity } from '../../src/auth/identity.ts';
import { ProxyFilter } from '../../src/auth/proxy-filter.ts';
import { RegistryError } from '../../src/errors.ts';

const gate = new AccessGate({
  authenticator: undefined,
  rules: { rules: new AccessRules([{ repositories: ['docker.io/library/**'], users: ['alice'] }]) },
  proxyFilters: new Map([['docker.io', new ProxyFilter({ deny: ['library/blocked'] })]]),
  service: 'wharf',
  realm: undefined,
  admins: new AccessRules([]),
  observers: new AccessRules([]),
});
const target = { upstream: 'docker.io', repository: 'library/alpine', asked: 'alpine' };
const request = (host: string | undefined, secure = false) => ({ authorization: undefined, address: '10.0.0.1', certificate: undefined, host, secure });

function refusal(fn: () => void): RegistryError {
  try {
    fn();
  } catch (err) {
    return err as RegistryError;
  }
  throw new Error('not refused');
}

describe('AccessGate', () => {
  it('challenges with a realm on the host the client used, over its scheme', () => {
    const err = refusal(() => gate.checkPull(anonymousIdentity('10.0.0.1'), target, request('wharf.example:5443', true)));
    expect(err.status).toBe(401);
    expect(err.headers['WWW-Authenticate']).toBe('Bearer realm="https://wharf.example:5443/token",service="wharf",scope="repository:alpine:pull"');
  });

  it.each(['evil.example/token",service="x', 'a b', 'host\\r\\nx: y', '', '[::1', 'x'.repeat(300)])('keeps a hostile Host header (%j) out of the challenge', (host) => {
    const err = refusal(() => gate.checkPing(anonymousIdentity('10.0.0.1'), request(host)));
    expect(err.headers['WWW-Authenticate']).toBe('Bearer realm="http://localhost/token",service="wharf"');
  });

  it('refuses what the proxy filter keeps out with 403 whoever asks, and someone with credentials with 403', () => {
    const blocked = { upstream: 'docker.io', repository: 'library/blocked', asked: 'blocked' };
    expect(refusal(() => gate.checkPull(anonymousIdentity('10.0.0.1'), blocked, request('h'))).status).toBe(403);
    const bob = { kind: 'user' as const, name: 'bob', groups: [], address: '10.0.0.1' };
    expect(refusal(() => gate.checkPull(bob, target, request('h')))).toBeInstanceOf(DeniedError);
    const alice = { ...bob, name: 'alice' };
    expect(() => gate.checkPull(alice, target, request('h'))).not.toThrow();
    // A token limits what its holder gets to what it grants, whatever the rules say.
    expect(gate.mayPull({ ...alice, tokenAccess: [{ type: 'repository', name: 'busybox', actions: ['pull'] }] }, target)).toBe(false);
    expect(gate.mayPull({ ...alice, tokenAccess: [{ type: 'repository', name: 'alpine', actions: ['pull'] }] }, target)).toBe(true);
  });
});

describe('AccessGate on a kept-alive connection (the fast path)', () => {
  const rules = [{ repositories: ['docker.io/library/**'], networks: ['10.0.0.0/8'] }];
  let current = new AccessRules(rules);
  const source = { get rules() { return current; } };
  const connGate = new AccessGate({ authenticator: undefined, rules: source, proxyFilters: new Map(), service: 'wharf', realm: undefined, admins: new AccessRules([]), observers: new AccessRules([]) });
  const key = (address: string) => ({ authorization: undefined, address, fingerprint: undefined });
  const req = (address: string) => () => ({ authorization: undefined, address, certificate: undefined, host: 'h', secure: false });

  it('tells clients of one hand-over connection apart by address, and follows a rules change at once', () => {
    const memo = {};
    expect(connGate.mayPullNow(memo, req('10.1.1.1'), key('10.1.1.1'), target, 1)).toMatchObject({ address: '10.1.1.1' });
    // Another client on the same (hand-over) connection: its own decision, not the memo's.
    expect(connGate.mayPullNow(memo, req('192.168.1.1'), key('192.168.1.1'), target, 2)).toBeUndefined();
    expect(connGate.mayPullNow(memo, req('10.1.1.1'), key('10.1.1.1'), target, 3)).toBeDefined();
    // Rules reloaded: the remembered decision is not used.
    current = new AccessRules([{ repositories: ['docker.io/library/**'], users: ['alice'] }]);
    expect(connGate.mayPullNow(memo, req('10.1.1.1'), key('10.1.1.1'), target, 4)).toBeUndefined();
    current = new AccessRules(rules);
    expect(connGate.mayPullNow(memo, req('10.1.1.1'), key('10.1.1.1'), { ...target, repository: 'library/busybox', asked: 'busybox' }, 5)).toBeDefined();
  });
});
