import { describe, expect, it } from 'vitest';
import { AccessRuleError, AccessRules, type AccessRuleOptions } from '../../src/auth/access-rules.ts';
import type { AuthOutcome } from '../../src/auth/auth-outcome.ts';
import { anonymousIdentity, type Identity } from '../../src/auth/identity.ts';

const anon = (address = '203.0.113.9'): Identity => anonymousIdentity(address);
const user = (name: string, groups: string[] = [], address = '203.0.113.9'): Identity => ({ kind: 'user', name, groups, address });
const machine = (name: string, address = '203.0.113.9'): Identity => ({ kind: 'machine', name, groups: [], address });
const cert = (name: string, address = '203.0.113.9'): Identity => ({ kind: 'certificate', name, groups: [], address });

describe('AccessRules', () => {
  const rules = new AccessRules([
    { repositories: ['docker.io/library/**', 'registry.k8s.io/**'], anonymous: true },
    { repositories: ['ghcr.io/acme/**'], users: ['ci-bot'], groups: ['acme'], machines: ['builder'] },
    { repositories: ['ghcr.io/acme-public/*'], networks: ['10.0.0.0/8', 'fd00::/8'] },
    { repositories: ['quay.io/**'], certificates: ['node-1.example'], actions: ['pull', 'push'] },
    { repositories: ['docker.io/evil/**'] }, // no subjects: denied to everyone
    { repositories: ['**'], networks: ['10.0.0.0/8'] },
  ]);

  it('anonymous rules admit every caller, anonymous or not', () => {
    expect(rules.allowed(anon(), 'docker.io/library/alpine', 'pull')).toBe(true);
    expect(rules.allowed(user('alice'), 'docker.io/library/alpine', 'pull')).toBe(true);
    expect(rules.allowed(anon(), 'registry.k8s.io/pause', 'pull')).toBe(true);
  });

  it('grants only the rule actions (default pull)', () => {
    expect(rules.allowed(anon(), 'docker.io/library/alpine', 'push')).toBe(false);
    expect(rules.allowed(cert('node-1.example'), 'quay.io/a/b', 'push')).toBe(true);
    expect(rules.allowed(cert('node-1.example'), 'quay.io/a/b', 'delete')).toBe(false);
  });

  it('admits users, groups and machines by exact name and kind', () => {
    expect(rules.allowed(user('ci-bot'), 'ghcr.io/acme/app', 'pull')).toBe(true);
    expect(rules.allowed(user('CI-bot'), 'ghcr.io/acme/app', 'pull')).toBe(false);
    expect(rules.allowed(user('bob', ['acme']), 'ghcr.io/acme/app', 'pull')).toBe(true);
    expect(rules.allowed(user('bob', ['other']), 'ghcr.io/acme/app', 'pull')).toBe(false);
    expect(rules.allowed(machine('builder'), 'ghcr.io/acme/app', 'pull')).toBe(true);
    // The name is the same, the kind is not: a machine called ci-bot is not the user ci-bot.
    expect(rules.allowed(machine('ci-bot'), 'ghcr.io/acme/app', 'pull')).toBe(false);
    expect(rules.allowed(cert('ci-bot'), 'ghcr.io/acme/app', 'pull')).toBe(false);
    expect(rules.allowed(user('builder'), 'ghcr.io/acme/app', 'pull')).toBe(false);
  });

  it('admits networks, IPv4, IPv6 and IPv4-mapped', () => {
    expect(rules.allowed(anon('10.9.8.7'), 'ghcr.io/acme-public/app', 'pull')).toBe(true);
    expect(rules.allowed(anon('::ffff:10.9.8.7'), 'ghcr.io/acme-public/app', 'pull')).toBe(true);
    expect(rules.allowed(anon('fd00::5'), 'ghcr.io/acme-public/app', 'pull')).toBe(true);
    expect(rules.allowed(anon('192.0.2.1'), 'ghcr.io/acme-public/app', 'pull')).toBe(false);
    expect(rules.allowed(anon('::ffff:192.0.2.1'), 'ghcr.io/acme-public/app', 'pull')).toBe(false);
  });

  it('first matching repository rule decides, even when it does not admit the caller', () => {
    // 10/8 is admitted to everything by the last rule, but acme's rule comes first.
    expect(rules.allowed(anon('10.1.1.1'), 'ghcr.io/acme/app', 'pull')).toBe(false);
    expect(rules.allowed(anon('10.1.1.1'), 'ghcr.io/other/app', 'pull')).toBe(true);
    expect(rules.ruleFor('ghcr.io/acme/app')).toBe(1);
    expect(rules.ruleFor('ghcr.io/other/app')).toBe(5);
  });

  it('a rule without subjects denies its repositories to everyone', () => {
    expect(rules.allowed(anon('10.1.1.1'), 'docker.io/evil/miner', 'pull')).toBe(false);
    expect(rules.allowed(user('ci-bot', ['acme'], '10.1.1.1'), 'docker.io/evil/miner', 'pull')).toBe(false);
  });

  it("'*' does not cross '/' in a rule", () => {
    expect(rules.allowed(anon('10.1.1.1'), 'ghcr.io/acme-public/app', 'pull')).toBe(true);
    // Not rule 2 (one segment only), so the catch-all decides: allowed from 10/8, not elsewhere.
    expect(rules.ruleFor('ghcr.io/acme-public/app/nested')).toBe(5);
    expect(rules.allowed(anon('192.0.2.1'), 'ghcr.io/acme-public/app/nested', 'pull')).toBe(false);
  });

  it('denies when no rule matches', () => {
    const narrow = new AccessRules([{ repositories: ['docker.io/library/**'], anonymous: true }]);
    expect(narrow.allowed(anon(), 'ghcr.io/a/b', 'pull')).toBe(false);
    expect(narrow.ruleFor('ghcr.io/a/b')).toBe(-1);
    expect(new AccessRules([]).allowed(user('alice'), 'docker.io/library/alpine', 'pull')).toBe(false);
  });

  it("'*' as an action grants every action", () => {
    const admin = new AccessRules([{ repositories: ['**'], users: ['root'], actions: ['*'] }]);
    expect(admin.allowed(user('root'), 'a/b', 'delete')).toBe(true);
    expect(admin.allowed(user('alice'), 'a/b', 'pull')).toBe(false);
  });

  it('reports each refusal as a denied outcome with the kind, never a name', () => {
    const events: [AuthOutcome, string][] = [];
    const counted = new AccessRules([{ repositories: ['docker.io/**'], users: ['alice'] }], {
      onOutcome: (result, kind) => events.push([result, kind]),
    });
    expect(counted.allowed(user('alice'), 'docker.io/x/y', 'pull')).toBe(true);
    expect(counted.allowed(user('bob'), 'docker.io/x/y', 'pull')).toBe(false);
    expect(counted.allowed(anon(), 'ghcr.io/x/y', 'pull')).toBe(false);
    expect(events).toEqual([
      ['denied', 'user'],
      ['denied', 'anonymous'],
    ]);
  });

  it.each<[AccessRuleOptions, string]>([
    [{ repositories: [] }, 'repositories must list at least one glob'],
    [{ repositories: ['docker.io/Library/*'] }, 'access rule 0: invalid repository glob'],
    [{ repositories: ['docker.io/**'], networks: ['10.0.0.0/40'] }, 'invalid network "10.0.0.0/40"'],
    [{ repositories: ['docker.io/**'], actions: [] }, 'actions is empty'],
    [{ repositories: ['docker.io/**'], actions: ['Pull'] }, 'action "Pull"'],
    [{ repositories: ['docker.io/**'], users: [''] }, 'users holds an empty name'],
  ])('refuses a malformed rule at construction: %j', (rule, message) => {
    expect(() => new AccessRules([rule])).toThrow(AccessRuleError);
    expect(() => new AccessRules([rule])).toThrow(message);
  });

  it('names the index of the bad rule', () => {
    try {
      new AccessRules([{ repositories: ['**'], anonymous: true }, { repositories: ['a//b'] }]);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AccessRuleError);
      expect((err as AccessRuleError).ruleIndex).toBe(1);
    }
  });
});
