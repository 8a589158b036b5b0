// The registry side of a stand-in: serves one image (manifest by tag or digest, config and
// layer blobs) for one repository path, behind the registry's own way of asking for
// credentials: a Bearer challenge answered at a token realm, a Basic challenge, or none; and
// optionally redirects manifests and/or blobs elsewhere (a CDN, another registry).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TestImage } from '../test-images.ts';
import { basicCredentials, type RecordedRequest, type StandinHandler } from './recording-server.ts';
import { deny, type Account, type TokenRealm } from './token-realm.ts';

/** What checks the Bearer tokens the registry is shown: a TokenRealm, or ACR's auth (acr-auth.ts). */
export type BearerIssuer = Pick<TokenRealm, 'allows'>;
/** Auth endpoints served by the registry's own server (their paths are tried first). */
export type AuthEndpoints = Pick<TokenRealm, 'handle'>;

export type RegistryAuth =
  | { readonly kind: 'none' }
  /** challenge(repository): the WWW-Authenticate value, verbatim in the registry's form. */
  | { readonly kind: 'bearer'; readonly realm: BearerIssuer; readonly challenge: (repository: string | undefined) => string }
  | { readonly kind: 'basic'; readonly accounts: readonly Account[]; readonly challenge: string };

export interface RegistryOptions {
  /** The repository as this registry's paths name it. */
  readonly repository: string;
  readonly tag: string;
  readonly image: TestImage;
  readonly auth: RegistryAuth;
  /** Repositories served with no Authorization at all (Quay answers public manifests so). */
  readonly openRepositories?: readonly string[];
  /** A token realm (or ACR's exchange and token endpoints) served by this same server. */
  readonly realmHere?: AuthEndpoints;
  /** Blob GET/HEAD answered 307 to this URL. */
  readonly blobRedirect?: (digest: string) => string;
  /** Manifest GET/HEAD answered 307 to this URL (registry.k8s.io). */
  readonly manifestRedirect?: (reference: string) => string;
  /** Headers on every manifest response (Docker Hub's ratelimit-limit / ratelimit-remaining). */
  readonly manifestHeaders?: Readonly<Record<string, string>>;
}

export function registryHandler(opts: RegistryOptions): StandinHandler {
  const { image } = opts;
  const blobs = new Map([image.config, ...image.layers].map((b) => [b.digest, b]));
  return (req, res, recorded) => {
    if (opts.realmHere?.handle(req, res, recorded)) return;
    if (recorded.path === '/v2/' || recorded.path === '/v2') {
      if (!authorized(opts, req, undefined)) return challenge(opts, res, undefined);
      return void res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(recorded.path);
    if (!m) return deny(res, 404, 'NOT_FOUND', 'no such route');
    const [, repository, kind, reference] = m as unknown as [string, string, string, string];
    if (!authorized(opts, req, repository)) return challenge(opts, res, repository);
    if (repository !== opts.repository) return deny(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
    if (kind === 'manifests') {
      if (opts.manifestRedirect) return redirect(res, opts.manifestRedirect(reference));
      if (reference !== opts.tag && reference !== image.manifest.digest) return deny(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      return send(req, res, image.manifest.body, { 'content-type': image.manifest.mediaType, 'docker-content-digest': image.manifest.digest, ...opts.manifestHeaders });
    }
    if (opts.blobRedirect) return redirect(res, opts.blobRedirect(reference));
    const blob = blobs.get(reference);
    if (!blob) return deny(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
    return send(req, res, blob.body, { 'content-type': 'application/octet-stream', 'docker-content-digest': blob.digest });
  };
}

function authorized(opts: RegistryOptions, req: IncomingMessage, repository: string | undefined): boolean {
  const { auth } = opts;
  if (auth.kind === 'none') return true;
  if (repository !== undefined && opts.openRepositories?.includes(repository)) return true;
  if (auth.kind === 'basic') {
    const offered = basicCredentials(req.headers);
    return auth.accounts.some((a) => a.username === offered?.username && a.password === offered.password && (repository === undefined || a.repositories === undefined || a.repositories.includes(repository)));
  }
  // /v2/ itself: any token of the realm will do.
  if (repository === undefined) return /^Bearer /i.test(req.headers.authorization ?? '');
  return auth.realm.allows(req.headers.authorization, repository);
}

function challenge(opts: RegistryOptions, res: ServerResponse, repository: string | undefined): void {
  const { auth } = opts;
  const value = auth.kind === 'bearer' ? auth.challenge(repository) : auth.kind === 'basic' ? auth.challenge : '';
  deny(res, 401, 'UNAUTHORIZED', 'authentication required', value ? { 'www-authenticate': value } : {});
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(307, { location, 'content-length': '0' }).end();
}

function send(req: IncomingMessage, res: ServerResponse, body: Buffer, headers: Record<string, string>): void {
  res.writeHead(200, { ...headers, 'content-length': String(body.length) });
  if (req.method === 'HEAD') return void res.end();
  res.end(body);
}

/** A CDN in front of object storage: serves the blobs at /<prefix>/<digest>?X-Signature=..., and,
 * like S3 and CloudFront with a presigned URL, refuses a request that also carries Authorization. */
export function cdnHandler(image: TestImage): StandinHandler {
  const blobs = new Map([image.config, ...image.layers].map((b) => [b.digest, b]));
  return (req, res, recorded) => {
    if (req.headers.authorization !== undefined) {
      res.writeHead(400, { 'content-type': 'application/xml' });
      return void res.end('<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>');
    }
    const digest = recorded.path.split('/').pop() ?? '';
    const blob = blobs.get(digest);
    if (!blob || !recorded.query.get('X-Signature')) return void res.writeHead(403).end('<Error><Code>AccessDenied</Code></Error>');
    send(req, res, blob.body, { 'content-type': 'application/octet-stream' });
  };
}

export type { RecordedRequest };
