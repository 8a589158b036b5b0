// An anonymous Docker registry token server (the auth.docker.io part of Docker Hub's flow), in
// process on 127.0.0.1: ES256 JWTs carrying their certificate (x5c), which the reference
// registry verifies against the certificate it is configured with. Every requested action is
// granted; what matters to wharf is the protocol and how many tokens it asks for.
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './run.ts';

export interface TokenServer {
  /** The realm: http://127.0.0.1:PORT/token */
  readonly url: string;
  readonly certPath: string;
  readonly issuer: string;
  readonly service: string;
  tokensIssued(): number;
  /** Every token handed out, for tests that check none of them leaks. */
  issuedTokens(): readonly string[];
  stop(): Promise<void>;
}

const TOKEN_LIFETIME_SECONDS = 300;

/** Starts the server; key and certificate are written into `dir`. */
export async function startTokenServer(opts: { dir: string; issuer: string; service: string }): Promise<TokenServer> {
  const keyPath = join(opts.dir, 'token-key.pem');
  const certPath = join(opts.dir, 'token-cert.pem');
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=wharf-test-token', '-keyout', keyPath, '-out', certPath,
  ]);
  const key = createPrivateKey(await readFile(keyPath));
  const certDer = (await readFile(certPath, 'utf8')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  let issued = 0;
  const tokens: string[] = [];

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const token = makeToken(key, certDer, opts.issuer, url.searchParams.get('service') ?? opts.service, scopes);
    issued++;
    tokens.push(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: TOKEN_LIFETIME_SECONDS, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/token`,
    certPath,
    issuer: opts.issuer,
    service: opts.service,
    tokensIssued: () => issued,
    issuedTokens: () => tokens,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function makeToken(key: KeyObject, certDer: string, issuer: string, audience: string, scopes: string[]): string {
  const access = scopes.flatMap((scope) => {
    // type:name:actions, where the name may itself contain ':' (host:port/repo).
    const first = scope.indexOf(':');
    const last = scope.lastIndexOf(':');
    if (first < 0 || last === first) return [];
    return [{ type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) }];
  });
  const now = Math.floor(Date.now() / 1000);
  const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer] };
  const claims = {
    iss: issuer,
    sub: '',
    aud: audience,
    exp: now + TOKEN_LIFETIME_SECONDS,
    nbf: now - 10,
    iat: now,
    jti: randomBytes(12).toString('hex'),
    access,
  };
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signingInput = `${b64(header)}.${b64(claims)}`;
  const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${signature.toString('base64url')}`;
}
