// Azure Container Registry's auth endpoints as its AAD flow uses them (Azure/acr
// docs/AAD-OAuth.md): `POST /oauth2/exchange` with a form (grant_type=access_token, service,
// tenant, access_token) answers {"refresh_token"} for an AAD access token it accepts and 401
// otherwise; `POST /oauth2/token` with a form (grant_type=refresh_token, service, scope,
// refresh_token) answers {"access_token"} (no expires_in, as ACR answers) for a refresh token it
// issued that is neither past its exp nor revoked. Refresh tokens are JWT-shaped
// (header.payload.signature in base64url, exp in the payload) as ACR's are, or opaque when told.
// Only POST form bodies are taken: a GET of the exchange is 405, a GET of the token endpoint
// 401 (no admin user or other Basic account here), a body of another type 400. Every request is
// recorded and every form kept, so a test counts what wharf asked.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { RecordedRequest } from './recording-server.ts';
import { deny } from './token-realm.ts';

const MAX_FORM_BYTES = 64 * 1024;

export interface AcrAuthSettings {
  /** The service ACR's challenge names and its endpoints insist on (the registry's host). */
  service: string;
  /** The tenant the exchange insists on, when set. */
  tenant?: string | undefined;
  /** AAD access tokens the exchange takes now (a test rotates them). */
  readonly aadTokens: Set<string>;
  /** Repositories a refresh token may pull. */
  readonly repositories: readonly string[];
  /** exp of a refresh token, from its issue (ACR: about 3 h). */
  refreshTokenLifetimeSeconds: number;
  /** 'opaque': refresh tokens that are no JWT (wharf cannot read their exp). */
  refreshTokenShape: 'jwt' | 'opaque';
}

export class AcrAuth {
  readonly settings: AcrAuthSettings;
  /** Requests to /oauth2/exchange and /oauth2/token (any method, any answer), in order. */
  readonly exchanges: RecordedRequest[] = [];
  readonly tokenRequests: RecordedRequest[] = [];
  /** The form of each POST that had one, in order. */
  readonly exchangeForms: URLSearchParams[] = [];
  readonly tokenForms: URLSearchParams[] = [];
  /** Refresh tokens issued, with their exp (seconds). */
  readonly #refreshTokens = new Map<string, { exp: number; revoked: boolean }>();
  readonly #accessTokens = new Map<string, ReadonlySet<string>>();

  constructor(settings: Partial<AcrAuthSettings> & Pick<AcrAuthSettings, 'service' | 'aadTokens' | 'repositories'>) {
    this.settings = { refreshTokenLifetimeSeconds: 3 * 3600, refreshTokenShape: 'jwt', ...settings };
  }

  /** The AAD access tokens the exchange takes now: a test rotates or clears them. */
  get aadTokens(): Set<string> {
    return this.settings.aadTokens;
  }

  /** Every refresh and access token issued so far stops working (an admin revoked them, or they aged out). */
  revokeTokens(): void {
    for (const t of this.#refreshTokens.values()) t.revoked = true;
    this.#accessTokens.clear();
  }

  issuedRefreshTokens(): string[] {
    return [...this.#refreshTokens.keys()];
  }

  /** Answers /oauth2/exchange and /oauth2/token; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, recorded: RecordedRequest): boolean {
    if (recorded.path === '/oauth2/exchange') {
      this.exchanges.push(recorded);
      if (req.method !== 'POST') return deny(res, 405, 'UNSUPPORTED', 'method not allowed', { allow: 'POST' }), true;
      readForm(req, res, (form) => {
        this.exchangeForms.push(form);
        this.#exchange(form, res);
      });
      return true;
    }
    if (recorded.path === '/oauth2/token') {
      this.tokenRequests.push(recorded);
      // GET with Basic is ACR's other flow (admin user, tokens); this registry has no such account.
      if (req.method !== 'POST') return deny(res, 401, 'UNAUTHORIZED', 'authentication required'), true;
      readForm(req, res, (form) => {
        this.tokenForms.push(form);
        this.#token(form, res);
      });
      return true;
    }
    return false;
  }

  #exchange(form: URLSearchParams, res: ServerResponse): void {
    const { service, tenant, aadTokens } = this.settings;
    if (form.get('grant_type') !== 'access_token') return deny(res, 400, 'UNSUPPORTED', 'unsupported grant_type');
    if (form.get('service') !== service) return deny(res, 400, 'UNSUPPORTED', 'service does not match');
    if (tenant !== undefined && form.get('tenant') !== tenant) return deny(res, 401, 'UNAUTHORIZED', 'tenant does not match');
    if (!aadTokens.has(form.get('access_token') ?? '')) return deny(res, 401, 'UNAUTHORIZED', 'invalid AAD access token');
    const exp = Math.floor(Date.now() / 1000) + this.settings.refreshTokenLifetimeSeconds;
    const token = this.settings.refreshTokenShape === 'jwt' ? jwtShaped({ jti: randomBytes(8).toString('hex'), sub: 'wharf-identity', aud: service, exp, grant_type: 'refresh_token' }) : `acr-refresh-${randomBytes(12).toString('hex')}`;
    this.#refreshTokens.set(token, { exp, revoked: false });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ refresh_token: token }));
  }

  #token(form: URLSearchParams, res: ServerResponse): void {
    if (form.get('grant_type') !== 'refresh_token') return deny(res, 400, 'UNSUPPORTED', 'unsupported grant_type');
    if (form.get('service') !== this.settings.service) return deny(res, 400, 'UNSUPPORTED', 'service does not match');
    const issued = this.#refreshTokens.get(form.get('refresh_token') ?? '');
    if (!issued || issued.revoked || issued.exp * 1000 <= Date.now()) return deny(res, 401, 'UNAUTHORIZED', 'invalid refresh token');
    const granted = new Set<string>();
    for (const scope of (form.get('scope') ?? '').split(' ').filter(Boolean)) {
      const m = /^repository:(.+):([a-z_*,]+)$/.exec(scope);
      if (m && m[2]!.split(',').includes('pull') && this.settings.repositories.includes(m[1]!)) granted.add(m[1]!);
    }
    const token = `acr-access-${randomBytes(9).toString('hex')}`;
    this.#accessTokens.set(token, granted);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token }));
  }

  /** Whether a Bearer Authorization carries an access token of this registry granting pull of repository. */
  allows(authorization: string | undefined, repository: string): boolean {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    return m !== null && (this.#accessTokens.get(m[1]!)?.has(repository) ?? false);
  }
}

function readForm(req: IncomingMessage, res: ServerResponse, then: (form: URLSearchParams) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= MAX_FORM_BYTES) chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_FORM_BYTES) return deny(res, 413, 'SIZE_INVALID', 'form too large');
    if (!/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '')) return deny(res, 400, 'UNSUPPORTED', 'form body expected');
    then(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
  });
}

/** header.payload.signature, base64url: the shape of ACR's tokens (the signature is random bytes). */
function jwtShaped(payload: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT', kid: 'standin' })}.${part(payload)}.${randomBytes(32).toString('base64url')}`;
}
