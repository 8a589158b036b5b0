// The token endpoint of a Docker-token-spec registry (GET realm?service=&scope=), as the
// registries in the reference answer it: Basic credentials checked against the accounts the
// stand-in knows (wrong ones: 401, as Docker Hub, GHCR and Quay answer), anonymous tokens only
// where the registry gives them, an anonymous request without a scope refused where the
// registry does so (GCR/AR), and a token that grants nothing when the request names another
// service than the one the registry's tokens are for (GitLab: a token asked with the registry's
// host as service is useless). Tokens are opaque; the registry side checks them here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { basicCredentials, type RecordedRequest } from './recording-server.ts';

export interface Account {
  readonly username: string;
  readonly password: string;
  /** Repositories this account may pull; unset: all. */
  readonly repositories?: readonly string[];
}

export interface TokenRealmOptions {
  /** The path the realm lives at on its server, e.g. /token, /v2/auth, /jwt/auth. */
  readonly path: string;
  /** The service this registry's tokens are for; undefined: the realm takes none (GCR/AR style). */
  readonly service?: string | undefined;
  readonly accounts: readonly Account[];
  /** Repositories anyone may pull with an anonymous token. */
  readonly publicRepositories: readonly string[];
  /** Anonymous token requests without a scope are refused (401), as Artifact Registry does. */
  readonly anonymousNeedsScope?: boolean;
  readonly expiresInSeconds?: number;
  /**
   * Identity (refresh) tokens this realm takes in an OAuth2 `POST` with grant_type=refresh_token
   * (the token spec's "OAuth2 token" flow, as docker login's identity tokens and ACR use it),
   * each naming the account it stands for. A POST answers `access_token` only.
   */
  readonly refreshTokens?: Readonly<Record<string, string>>;
}

interface Grant {
  readonly repositories: ReadonlySet<string>;
  readonly account: string | undefined;
}

export class TokenRealm {
  readonly options: TokenRealmOptions;
  readonly #grants = new Map<string, Grant>();
  /** Token requests this realm answered (any status). */
  readonly requests: RecordedRequest[] = [];
  /** The form of each POST token request, in order. */
  readonly forms: URLSearchParams[] = [];

  constructor(options: TokenRealmOptions) {
    this.options = options;
  }

  /** Answers a request for the realm's path; returns false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest): boolean {
    if (recorded.path !== this.options.path) return false;
    this.requests.push(recorded);
    if (req.method === 'POST') return this.#oauth2(req, res), true;
    const offered = basicCredentials(req.headers);
    let account: Account | undefined;
    if (req.headers.authorization !== undefined) {
      account = offered && this.options.accounts.find((a) => a.username === offered.username && a.password === offered.password);
      if (!account) return deny(res, 401, 'UNAUTHORIZED', 'invalid username or password'), true;
    }
    const scopes = recorded.query.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    if (!account && scopes.length === 0 && this.options.anonymousNeedsScope) return deny(res, 401, 'UNAUTHORIZED', 'anonymous token requests need a scope'), true;
    const serviceRight = this.options.service === undefined || recorded.query.get('service') === this.options.service;
    const granted = new Set<string>();
    for (const scope of scopes) {
      const m = /^repository:(.+):([a-z*,]+)$/.exec(scope);
      if (!m || !m[2]!.split(',').includes('pull') || !serviceRight) continue;
      const repo = m[1]!;
      const allowed = account ? account.repositories === undefined || account.repositories.includes(repo) : this.options.publicRepositories.includes(repo);
      if (allowed) granted.add(repo);
    }
    const token = `tok-${randomBytes(9).toString('hex')}`;
    this.#grants.set(token, { repositories: granted, account: account?.username });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: this.options.expiresInSeconds ?? 300, issued_at: new Date().toISOString() }));
    return true;
  }

  #oauth2(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      this.forms.push(form);
      if (!/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '')) return deny(res, 400, 'UNSUPPORTED', 'form expected');
      if (form.get('grant_type') !== 'refresh_token' || !form.get('client_id')) return deny(res, 400, 'UNSUPPORTED', 'unsupported grant');
      const username = this.options.refreshTokens?.[form.get('refresh_token') ?? ''];
      const account = username === undefined ? undefined : this.options.accounts.find((a) => a.username === username);
      if (!account) return deny(res, 401, 'UNAUTHORIZED', 'invalid refresh token');
      const granted = new Set<string>();
      for (const scope of (form.get('scope') ?? '').split(' ').filter(Boolean)) {
        const m = /^repository:(.+):([a-z*,]+)$/.exec(scope);
        if (m && m[2]!.split(',').includes('pull') && (account.repositories === undefined || account.repositories.includes(m[1]!))) granted.add(m[1]!);
      }
      const token = `oauth-${randomBytes(9).toString('hex')}`;
      this.#grants.set(token, { repositories: granted, account: account.username });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: token, expires_in: this.options.expiresInSeconds ?? 300, scope: form.get('scope') ?? '' }));
    });
  }

  /** Whether a Bearer Authorization header carries a token of this realm granting pull of repository. */
  allows(authorization: string | undefined, repository: string): boolean {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    return m !== null && (this.#grants.get(m[1]!)?.repositories.has(repository) ?? false);
  }

  /** Every token this realm issued. */
  issuedTokens(): string[] {
    return [...this.#grants.keys()];
  }
}

export function deny(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ errors: [{ code, message, detail: null }] }));
}
