// The one place that decides whether a request may go on: who is asking (authenticator.ts), and
// whether that caller may pull the repository it names (the access rules, the upstream's proxy
// filter and, for a wharf token, the token's own grant). Decided before any store or upstream is
// asked, on manifests, blobs, tag lists and referrers alike. Refusals never say whether the
// content exists: 401 with a Bearer challenge for a caller without credentials (so every
// registry client fetches a token and asks again), 403 DENIED for one who has them.
import type { AccessRulesSource } from './access-rules-source.ts';
import { AccessRules } from './access-rules.ts';
import type { Authenticator, ClientCertificate } from './authenticator.ts';
import { AuthError } from './auth-errors.ts';
import { anonymousIdentity, type Identity } from './identity.ts';
import type { ProxyFilter } from './proxy-filter.ts';
import { accessAllows, formatScope } from './scope.ts';
import { RegistryError } from '../errors.ts';

/** What the gate reads of a request. */
export interface GateRequest {
  readonly authorization: string | undefined;
  readonly address: string;
  readonly certificate: ClientCertificate | undefined;
  /** Host header and scheme as the client used them: the default token realm is on them. */
  readonly host: string | undefined;
  readonly secure: boolean;
}

const IDENTITY_MEMO = Symbol('wharf.identityMemo');

/** What a connection (its socket object) remembers of the last caller the gate identified on it, and its last decision. */
export interface ConnectionMemo {
  [IDENTITY_MEMO]?: {
    readonly authorization: string | undefined;
    readonly fingerprint: string | undefined;
    readonly identity: Identity;
    decision: { readonly rules: AccessRules; readonly upstream: string; readonly repository: string; readonly asked: string; readonly allowed: boolean } | undefined;
  };
}

/** What tells one caller on a connection from another. */
export interface MemoKey {
  readonly authorization: string | undefined;
  readonly address: string;
  readonly fingerprint: string | undefined;
}

/** The repository a request is about, routed. */
export interface GateTarget {
  readonly upstream: string;
  readonly repository: string;
  /** The scope name of the challenge, which the client's token must name (scopeName()). */
  readonly asked: string;
}

/**
 * The name a token scope uses for a request: as the client wrote it in the path, with the
 * registry in front when it came as ?ns= (containerd's mirror form): `acme/a?ns=ghcr.io` is
 * `ghcr.io/acme/a`, the name /token routes the same way without the query.
 */
export function scopeName(pathName: string, route: { readonly upstream: { readonly name: string }; readonly namespace: string | undefined }): string {
  if (route.namespace === undefined || pathName.startsWith(`${route.upstream.name}/`)) return pathName;
  return `${route.upstream.name}/${pathName}`;
}

export interface AccessGateOptions {
  /** Undefined: nobody is authenticated, every caller is anonymous (proxy filters alone). */
  readonly authenticator: Authenticator | undefined;
  readonly rules: Pick<AccessRulesSource, 'rules'>;
  /** Per upstream name; an upstream without one admits every repository. */
  readonly proxyFilters: ReadonlyMap<string, ProxyFilter>;
  readonly service: string;
  /** Fixed token realm; unset: /token on the host and scheme the client used. */
  readonly realm: string | undefined;
  readonly admins: AccessRules;
  readonly observers: AccessRules;
  /** Told of an identity taken from a connection's memo, to count it as the authenticator would ('ok'). */
  readonly onRepeat?: (kind: Identity['kind']) => void;
}

const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

export class AccessGate {
  readonly #o: AccessGateOptions;

  constructor(options: AccessGateOptions) {
    this.#o = options;
  }

  /** Throws the 401 (with its challenge) when the credentials fail. */
  async identify(req: GateRequest): Promise<Identity> {
    const authenticator = this.#o.authenticator;
    if (authenticator === undefined) return anonymousIdentity(req.address);
    try {
      return await authenticator.authenticate(req);
    } catch (err) {
      if (err instanceof AuthError) throw this.#challenged(err, req, undefined, true);
      throw err;
    }
  }

  /** identify() from memory alone, or undefined when that needs a wait (the fast path then passes). */
  identifyNow(req: GateRequest): Identity | undefined {
    const authenticator = this.#o.authenticator;
    return authenticator === undefined ? anonymousIdentity(req.address) : authenticator.authenticateNow(req);
  }

  /**
   * For the manifest fast path: the caller, when memory alone says it may pull the target; else
   * undefined (the full handler then decides, challenges or refuses). Keep-alive clients send the
   * same header on every request, so the connection remembers the last caller and decision: the
   * identity until its token expires, the decision while the same rules are in force. A hand-over
   * connection between threads carries many clients, which address and certificate tell apart.
   */
  mayPullNow(memo: ConnectionMemo, req: () => GateRequest, asking: MemoKey, target: GateTarget, now: number): Identity | undefined {
    let held = memo[IDENTITY_MEMO];
    if (
      held === undefined ||
      held.authorization !== asking.authorization ||
      held.identity.address !== asking.address ||
      held.fingerprint !== asking.fingerprint ||
      (held.identity.expiresAt !== undefined && now >= held.identity.expiresAt)
    ) {
      const identity = this.identifyNow(req());
      if (identity === undefined) return undefined;
      held = { authorization: asking.authorization, fingerprint: asking.fingerprint, identity, decision: undefined };
      memo[IDENTITY_MEMO] = held;
    } else {
      this.#o.onRepeat?.(held.identity.kind);
    }
    const rules = this.#o.rules.rules;
    const d = held.decision;
    if (d !== undefined && d.rules === rules && d.upstream === target.upstream && d.repository === target.repository && d.asked === target.asked) {
      return d.allowed ? held.identity : undefined;
    }
    const allowed = this.mayPull(held.identity, target, false);
    held.decision = { rules, upstream: target.upstream, repository: target.repository, asked: target.asked, allowed };
    return allowed ? held.identity : undefined;
  }

  /**
   * The /v2/ ping: a caller without credentials is always challenged, as registry:2 does.
   * dockerd and containers/image send the credentials of a login only to a registry whose ping
   * challenged them: answering 200 to a node network would let any password "log in" there and
   * keep users from the repositories granted to them. Callers granted by network or certificate
   * then fetch a token anonymously, or ask for repositories straight away (containerd does).
   */
  checkPing(identity: Identity, req: GateRequest): void {
    if (identity.kind !== 'anonymous') return;
    throw this.#challenged(new UnauthorizedError('authentication required'), req, undefined, false);
  }

  /** Resolves when the caller may pull the repository; else throws 401 or 403. */
  checkPull(identity: Identity, target: GateTarget, req: GateRequest): void {
    if (this.mayPull(identity, target)) return;
    // Credentials cannot help with a repository the cache does not take at all.
    if (!this.admitted(target)) throw new DeniedError('repository not proxied by this registry');
    if (identity.kind === 'anonymous') throw this.#challenged(new UnauthorizedError('authentication required'), req, target.asked, false);
    throw new DeniedError();
  }

  /** The decision alone: rules, proxy filter, and a token's own grant. */
  mayPull(identity: Identity, target: GateTarget, count = true): boolean {
    if (!this.admitted(target)) return false;
    if (identity.tokenAccess !== undefined && !accessAllows(identity.tokenAccess, 'repository', target.asked, 'pull')) return false;
    return this.#o.rules.rules.allowed(identity, `${target.upstream}/${target.repository}`, 'pull', count);
  }

  /** Whether the upstream's proxy filter lets the repository into the cache at all. */
  admitted(target: Pick<GateTarget, 'upstream' | 'repository'>): boolean {
    return this.#o.proxyFilters.get(target.upstream)?.admits(target.repository) ?? true;
  }

  isAdmin(identity: Identity): boolean {
    return this.#o.admins.admitsAnywhere(identity, 'pull');
  }

  /** Status page, /status.json and /metrics name repositories: observers and admins only. */
  mayObserve(identity: Identity): boolean {
    return this.#o.observers.admitsAnywhere(identity, 'pull') || this.#o.admins.admitsAnywhere(identity, 'pull');
  }

  /** A 401 or 403 for an operator endpoint (Basic challenge: a browser then asks for a password). */
  refuseOperator(identity: Identity): RegistryError {
    return identity.kind === 'anonymous'
      ? new UnauthorizedError('authentication required', { 'WWW-Authenticate': 'Basic realm="wharf", charset="UTF-8"' })
      : new DeniedError();
  }

  realm(req: Pick<GateRequest, 'host' | 'secure'>): string {
    // The Host header is the client's to write: only a plain host[:port] goes into the challenge.
    const host = req.host !== undefined && HOST.test(req.host) ? req.host : 'localhost';
    return this.#o.realm ?? `${req.secure ? 'https' : 'http'}://${host}/token`;
  }

  /** The challenge Docker's token flow starts from (distribution's token.md). */
  #challenged(err: RegistryError, req: GateRequest, scope: string | undefined, invalidToken: boolean): RegistryError {
    const parts = [`realm="${this.realm(req)}"`, `service="${this.#o.service}"`];
    if (scope !== undefined) parts.push(`scope="${formatScope({ type: 'repository', name: scope, actions: ['pull'] })}"`);
    if (invalidToken && /^bearer /i.test(req.authorization ?? '')) parts.push('error="invalid_token"');
    return new RegistryError(err.code, err.status, err.message, undefined, { ...err.headers, 'WWW-Authenticate': `Bearer ${parts.join(',')}` });
  }
}

/** Authentication needed (or failed): 401 UNAUTHORIZED, with a challenge. */
export class UnauthorizedError extends RegistryError {
  constructor(message: string, headers: Record<string, string> = {}) {
    super('UNAUTHORIZED', 401, message, undefined, headers);
  }
}

/** Authenticated, and not allowed. Says nothing of whether the content exists. */
export class DeniedError extends RegistryError {
  constructor(message = 'requested access to the resource is denied') {
    super('DENIED', 403, message);
  }
}
