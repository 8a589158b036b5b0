// Who may do what to which repository: an ordered list of rules on `<upstream>/<repository>`
// globs (see repository-glob.ts), compiled once, evaluated on every request.
//
// Semantics: the first rule whose repositories match decides. If the caller is among its
// subjects and the action among its actions, allowed; otherwise denied, and later rules are
// not consulted. No rule matches: denied. Stopping at the first matching repository (as zot and
// Harbor do) keeps a narrow rule narrow: with `ghcr.io/acme/** -> group acme` before
// `** -> network 10.0.0.0/8`, a node on 10/8 does not get acme's images through the broad rule.
// A rule with no subjects therefore denies its repositories to everyone.
//
// Subjects are alternatives (any one admits): `anonymous: true` admits every caller, with or
// without credentials (an authenticated caller never gets less than an anonymous one);
// `users`, `machines` and `certificates` name identities of that kind (names compared exactly);
// `groups` admits any identity in one of them; `networks` admits any caller whose address is in
// one of the CIDRs, whatever its credentials.
import type { AuthOutcomeListener } from './auth-outcome.ts';
import type { Identity } from './identity.ts';
import { NetworkList } from './network-list.ts';
import { compileGlobs, type RepositoryGlob } from './repository-glob.ts';

export interface AccessRuleOptions {
  /** Globs on `<upstream>/<repository>`, e.g. `docker.io/library/**`, `ghcr.io/acme/*`. */
  readonly repositories: readonly string[];
  /** What the rule grants; default `['pull']`, the only action a cache serves. `*` is every action. */
  readonly actions?: readonly string[];
  readonly anonymous?: boolean;
  readonly users?: readonly string[];
  readonly groups?: readonly string[];
  readonly machines?: readonly string[];
  /** Client certificate subject CNs. */
  readonly certificates?: readonly string[];
  /** CIDRs, IPv4 or IPv6. */
  readonly networks?: readonly string[];
}

export class AccessRuleError extends Error {
  readonly ruleIndex: number;

  constructor(ruleIndex: number, why: string, options?: { cause?: unknown }) {
    super(`access rule ${ruleIndex}: ${why}`, options);
    this.ruleIndex = ruleIndex;
    this.name = 'AccessRuleError';
  }
}

const ACTION = /^(?:[a-z]+|\*)$/;
const DEFAULT_ACTIONS: readonly string[] = ['pull'];

interface CompiledRule {
  readonly repositories: RepositoryGlob;
  readonly actions: ReadonlySet<string>;
  readonly anyAction: boolean;
  readonly anonymous: boolean;
  readonly users: ReadonlySet<string>;
  readonly groups: ReadonlySet<string>;
  readonly machines: ReadonlySet<string>;
  readonly certificates: ReadonlySet<string>;
  readonly networks: NetworkList | undefined;
}

export class AccessRules {
  readonly #rules: readonly CompiledRule[];
  readonly #onOutcome: AuthOutcomeListener | undefined;

  constructor(rules: readonly AccessRuleOptions[], options: { readonly onOutcome?: AuthOutcomeListener } = {}) {
    this.#rules = rules.map((rule, index) => compileRule(rule, index));
    this.#onOutcome = options.onOutcome;
  }

  /** @param repository `<upstream>/<repository>` as routed, e.g. `docker.io/library/alpine` */
  allowed(identity: Identity, repository: string, action: string, count = true): boolean {
    const index = this.ruleFor(repository);
    const rule = index === -1 ? undefined : this.#rules[index];
    const ok = rule !== undefined && (rule.anyAction || rule.actions.has(action)) && admits(rule, identity);
    // count false: a look-ahead (the fast path) whose refusal the full handler reports itself.
    if (!ok && count) this.#onOutcome?.('denied', identity.kind);
    return ok;
  }

  /**
   * Whether some rule admits the identity for the action, whatever the repository: the /v2/
   * ping needs no credentials from a caller the rules already let pull something. Not counted.
   */
  admitsAnywhere(identity: Identity, action: string): boolean {
    return this.#rules.some((rule) => (rule.anyAction || rule.actions.has(action)) && admits(rule, identity));
  }

  /** Index of the rule that decides for this repository, -1 when none does (for logs). */
  ruleFor(repository: string): number {
    const rules = this.#rules;
    for (let i = 0; i < rules.length; i++) if (rules[i]!.repositories.matches(repository)) return i;
    return -1;
  }
}

function admits(rule: CompiledRule, identity: Identity): boolean {
  if (rule.anonymous) return true;
  const name = identity.name;
  if (name !== undefined) {
    if (identity.kind === 'user' && rule.users.has(name)) return true;
    if (identity.kind === 'machine' && rule.machines.has(name)) return true;
    if (identity.kind === 'certificate' && rule.certificates.has(name)) return true;
  }
  if (rule.groups.size > 0) for (const group of identity.groups) if (rule.groups.has(group)) return true;
  return rule.networks !== undefined && rule.networks.contains(identity.address);
}

function compileRule(rule: AccessRuleOptions, index: number): CompiledRule {
  const fail = (why: string, cause?: unknown): never => {
    throw new AccessRuleError(index, why, cause === undefined ? undefined : { cause });
  };
  if (!Array.isArray(rule.repositories) || rule.repositories.length === 0) fail('repositories must list at least one glob');
  let repositories: RepositoryGlob | undefined;
  try {
    repositories = compileGlobs(rule.repositories);
  } catch (err) {
    fail((err as Error).message, err);
  }
  const actions = rule.actions ?? DEFAULT_ACTIONS;
  if (actions.length === 0) fail('actions is empty; leave it out for [pull]');
  for (const action of actions) if (!ACTION.test(action)) fail(`action ${JSON.stringify(action)} is not a word of lowercase letters or '*'`);
  let networks: NetworkList | undefined;
  try {
    networks = rule.networks === undefined || rule.networks.length === 0 ? undefined : new NetworkList(rule.networks);
  } catch (err) {
    fail((err as Error).message, err);
  }
  return {
    repositories: repositories!,
    actions: new Set(actions),
    anyAction: actions.includes('*'),
    anonymous: rule.anonymous === true,
    users: names(rule.users, 'users', fail),
    groups: names(rule.groups, 'groups', fail),
    machines: names(rule.machines, 'machines', fail),
    certificates: names(rule.certificates, 'certificates', fail),
    networks,
  };
}

function names(list: readonly string[] | undefined, key: string, fail: (why: string) => never): ReadonlySet<string> {
  for (const name of list ?? []) if (typeof name !== 'string' || name.length === 0) fail(`${key} holds an empty name`);
  return new Set(list ?? []);
}
