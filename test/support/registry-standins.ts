// Stand-ins for the registries people put behind wharf, each reproducing its real challenge
// header (the verbatim form in ../shared/reference/security-scale-upstreams.md, section C, with
// https://<host> replaced by a loopback origin), where its token realm lives, which credentials
// it takes, and its redirects. Every request to every server of a stand-in is recorded in
// order, so a test can assert what wharf sent where.
//
// Host names: every server binds 127.0.0.1. The registry itself is "127.0.0.1:PORT"; a host
// that is *another host* in the real flow (Docker Hub's CDN, GitLab's realm on gitlab.com,
// registry.k8s.io's redirect target on pkg.dev) is named "localhost:PORT". wharf compares hosts
// by name (credential-policy.ts: the upstream's own host on another port counts as its own side;
// dial-policy.ts: by host name, without the port), so 127.0.0.1 and localhost are two hosts to
// it, as they are to any HTTP client. A realm on the same host and another port (Docker Hub's
// auth.docker.io) stands for a realm of the same registrable domain, which loopback names lack.
import type { TestImage } from './test-images.ts';
import { startRecordingServer, type RecordedRequest, type RecordingServer } from './standins/recording-server.ts';
import { cdnHandler, registryHandler, type RegistryOptions } from './standins/registry.ts';
import { TokenRealm, type Account } from './standins/token-realm.ts';
import { AcrAuth } from './standins/acr-auth.ts';

export type { Account, RecordedRequest, RecordingServer };
export { AcrAuth, TokenRealm };

export interface Standin {
  /** The upstream url for wharf's config. */
  readonly url: string;
  /** The registry wharf is configured with (the first hop). */
  readonly registry: RecordingServer;
  /** Every server of the stand-in by label: registry, auth, cdn, target. */
  readonly servers: Readonly<Record<string, RecordingServer>>;
  /** The token realm, when the flow has one. */
  readonly realm: TokenRealm | undefined;
  /** Every request to any of its servers, in arrival order. */
  readonly requests: RecordedRequest[];
  stop(): Promise<void>;
}

interface Served {
  /** The repository as the registry's paths name it. */
  readonly repository: string;
  readonly tag: string;
  readonly image: TestImage;
}

function standin(servers: Record<string, RecordingServer>, realm: TokenRealm | undefined, requests: RecordedRequest[]): Standin {
  const registry = servers.registry!;
  return { url: registry.origin, registry, servers, realm, requests, stop: async () => void (await Promise.all(Object.values(servers).map((s) => s.stop()))) };
}

/** Starts a server whose handler is set once the origins of all servers are known. */
async function lateServer(label: string, host: '127.0.0.1' | 'localhost', log: RecordedRequest[]) {
  let handler: Parameters<typeof startRecordingServer>[2] = (_req, res) => void res.writeHead(503).end();
  const server = await startRecordingServer(label, host, (req, res, rec) => handler(req, res, rec), log);
  return { server, set: (h: typeof handler) => void (handler = h) };
}

/**
 * A registry whose token realm is on the registry itself (GHCR /token, Quay /v2/auth, GCR/AR
 * /v2/token, Harbor /service/token, Artifactory's repo path), challenging with
 * challenge(realmUrl, repository).
 */
async function sameOriginTokenRegistry(
  served: Served,
  realmOptions: ConstructorParameters<typeof TokenRealm>[0],
  challenge: (realmUrl: string, repository: string | undefined) => string,
  extra: Partial<RegistryOptions> = {},
): Promise<Standin> {
  const log: RecordedRequest[] = [];
  const realm = new TokenRealm(realmOptions);
  const reg = await lateServer('registry', '127.0.0.1', log);
  const realmUrl = `${reg.server.origin}${realmOptions.path}`;
  reg.set(registryHandler({ ...served, ...extra, realmHere: realm, auth: { kind: 'bearer', realm, challenge: (repo) => challenge(realmUrl, repo) } }));
  return standin({ registry: reg.server }, realm, log);
}

/**
 * Docker Hub: registry-1.docker.io challenges for auth.docker.io (here: another port of the
 * registry's host), tokens for service registry.docker.io, 401 for repositories it does not
 * know (or that the token does not cover), blobs 307 to a CDN (here: localhost, another host)
 * that refuses Authorization next to its signed URL, and ratelimit-* headers on manifests.
 */
export async function startDockerHub(served: Served & { accounts: readonly Account[]; publicRepositories: readonly string[] }): Promise<Standin> {
  const log: RecordedRequest[] = [];
  const realm = new TokenRealm({ path: '/token', service: 'registry.docker.io', accounts: served.accounts, publicRepositories: served.publicRepositories });
  const auth = await startRecordingServer('auth', '127.0.0.1', (req, res, rec) => void (realm.handle(req, res, rec) || res.writeHead(404).end()), log);
  const cdn = await startRecordingServer('cdn', 'localhost', cdnHandler(served.image), log);
  const reg = await lateServer('registry', '127.0.0.1', log);
  const realmUrl = `${auth.origin}/token`;
  reg.set(
    registryHandler({
      ...served,
      auth: {
        kind: 'bearer',
        realm,
        // The form Docker Hub sends for a repository path: the /v2/ form plus the scope.
        challenge: (repo) => `Bearer realm="${realmUrl}",service="registry.docker.io"${repo ? `,scope="repository:${repo}:pull"` : ''}`,
      },
      blobRedirect: (digest) => `${cdn.origin}/registry-v2/docker/registry/v2/blobs/${digest}?X-Signature=c2lnbmVk&Expires=1900000000`,
      manifestHeaders: { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '99;w=21600', 'docker-ratelimit-source': '127.0.0.1' },
    }),
  );
  return standin({ registry: reg.server, auth, cdn }, realm, log);
}

/** GHCR: realm ghcr.io/token, service ghcr.io, the scope named in the challenge; anonymous tokens for public packages, user:PAT for private. */
export function startGhcr(served: Served & { accounts: readonly Account[]; publicRepositories: readonly string[] }): Promise<Standin> {
  return sameOriginTokenRegistry(
    served,
    { path: '/token', service: 'ghcr.io', accounts: served.accounts, publicRepositories: served.publicRepositories },
    (realmUrl, repo) => `Bearer realm="${realmUrl}",service="ghcr.io",scope="repository:${repo ?? 'user/image'}:pull"`,
  );
}

/**
 * Quay: one header value listing Basic and Bearer (`Basic realm="quay.io", Bearer realm=...`),
 * realm /v2/auth, service quay.io, robot accounts org+name:token; public repositories answer
 * without any challenge at all.
 */
export function startQuay(served: Served & { accounts: readonly Account[]; openRepositories: readonly string[] }): Promise<Standin> {
  return sameOriginTokenRegistry(
    served,
    { path: '/v2/auth', service: 'quay.io', accounts: served.accounts, publicRepositories: served.openRepositories },
    (realmUrl) => `Basic realm="quay.io", Bearer realm="${realmUrl}",service="quay.io"`,
    { openRepositories: served.openRepositories },
  );
}

/**
 * registry.k8s.io: anonymous, no challenge; manifests and blobs 307 to Artifact Registry
 * (here: localhost, another host) under k8s-artifacts-prod/images/<repo>. The target may
 * challenge for itself (AR's /v2/token realm, no service), for the redirected path's scope.
 */
export async function startK8sRegistry(served: Served & { targetChallenges: boolean }): Promise<Standin> {
  const log: RecordedRequest[] = [];
  const targetRepository = `k8s-artifacts-prod/images/${served.repository}`;
  const realm = new TokenRealm({ path: '/v2/token', accounts: [], publicRepositories: [targetRepository], anonymousNeedsScope: true });
  const target = await lateServer('target', 'localhost', log);
  const realmUrl = `${target.server.origin}/v2/token`;
  target.set(
    registryHandler({
      ...served,
      repository: targetRepository,
      realmHere: realm,
      auth: served.targetChallenges ? { kind: 'bearer', realm, challenge: () => `Bearer realm="${realmUrl}"` } : { kind: 'none' },
    }),
  );
  const base = `${target.server.origin}/v2/${targetRepository}`;
  const reg = await startRecordingServer(
    'registry',
    '127.0.0.1',
    registryHandler({ ...served, auth: { kind: 'none' }, manifestRedirect: (ref) => `${base}/manifests/${ref}`, blobRedirect: (digest) => `${base}/blobs/${digest}` }),
    log,
  );
  return standin({ registry: reg, target: target.server }, served.targetChallenges ? realm : undefined, log);
}

/**
 * GCR (`service="gcr.io"`) or Artifact Registry (no service): realm /v2/token, Basic
 * oauth2accesstoken:<access token> or _json_key:<service account JSON>; an anonymous token
 * request without a scope is refused.
 */
export function startGoogleRegistry(served: Served & { flavor: 'gcr' | 'artifact-registry'; accounts: readonly Account[]; publicRepositories: readonly string[] }): Promise<Standin> {
  const service = served.flavor === 'gcr' ? 'gcr.io' : undefined;
  return sameOriginTokenRegistry(
    served,
    { path: '/v2/token', service, accounts: served.accounts, publicRepositories: served.publicRepositories, anonymousNeedsScope: true, expiresInSeconds: 3600 },
    (realmUrl) => (service ? `Bearer realm="${realmUrl}",service="${service}"` : `Bearer realm="${realmUrl}"`),
  );
}

/**
 * GitLab: registry.gitlab.com challenges for a realm on another host (gitlab.com/jwt/auth; here
 * localhost:PORT) with the literal service container_registry; job tokens
 * (gitlab-ci-token:<job token>), deploy tokens and PATs as Basic at the realm.
 */
export async function startGitlab(served: Served & { accounts: readonly Account[]; publicRepositories: readonly string[] }): Promise<Standin> {
  const log: RecordedRequest[] = [];
  const realm = new TokenRealm({ path: '/jwt/auth', service: 'container_registry', accounts: served.accounts, publicRepositories: served.publicRepositories, expiresInSeconds: 900 });
  const auth = await startRecordingServer('auth', 'localhost', (req, res, rec) => void (realm.handle(req, res, rec) || res.writeHead(404).end()), log);
  const realmUrl = `${auth.origin}/jwt/auth`;
  const reg = await startRecordingServer(
    'registry',
    '127.0.0.1',
    registryHandler({ ...served, auth: { kind: 'bearer', realm, challenge: () => `Bearer realm="${realmUrl}",service="container_registry"` } }),
    log,
  );
  return standin({ registry: reg, auth }, realm, log);
}

/** Harbor: realm <host>/service/token, service harbor-registry, robot accounts robot$name (robot$project+name). */
export function startHarbor(served: Served & { accounts: readonly Account[]; publicRepositories: readonly string[] }): Promise<Standin> {
  return sameOriginTokenRegistry(
    served,
    { path: '/service/token', service: 'harbor-registry', accounts: served.accounts, publicRepositories: served.publicRepositories, expiresInSeconds: 1800 },
    (realmUrl) => `Bearer realm="${realmUrl}",service="harbor-registry"`,
  );
}

export type ArtifactoryShape = 'repo-path' | 'no-service' | 'basic';

/**
 * JFrog Artifactory's three challenge shapes: the repository-path method
 * (`realm=".../artifactory/api/docker/<repo key>/v2/token",service="<host>"`), the
 * subdomain/port method (`realm="<host>/v2/token"`, no service), and plain
 * `Basic realm="Artifactory Realm"`; credentials user:access-token (or API key).
 */
export async function startArtifactory(served: Served & { shape: ArtifactoryShape; repoKey: string; accounts: readonly Account[] }): Promise<Standin> {
  if (served.shape === 'basic') {
    const log: RecordedRequest[] = [];
    const reg = await startRecordingServer('registry', '127.0.0.1', registryHandler({ ...served, auth: { kind: 'basic', accounts: served.accounts, challenge: 'Basic realm="Artifactory Realm"' } }), log);
    return standin({ registry: reg }, undefined, log);
  }
  if (served.shape === 'no-service') {
    return sameOriginTokenRegistry(served, { path: '/v2/token', accounts: served.accounts, publicRepositories: [] }, (realmUrl) => `Bearer realm="${realmUrl}"`);
  }
  const log: RecordedRequest[] = [];
  const realm = new TokenRealm({ path: `/artifactory/api/docker/${served.repoKey}/v2/token`, accounts: served.accounts, publicRepositories: [] });
  const reg = await lateServer('registry', '127.0.0.1', log);
  const realmUrl = `${reg.server.origin}${realm.options.path}`;
  // The service is the registry's host:port as the client reached it.
  reg.set(registryHandler({ ...served, realmHere: realm, auth: { kind: 'bearer', realm, challenge: () => `Bearer realm="${realmUrl}",service="${reg.server.host}"` } }));
  return standin({ registry: reg.server }, realm, log);
}

/**
 * The standard token flow of registry:2-based registries (Portus, docker_auth, IBM Cloud,
 * Alibaba, DigitalOcean): `Bearer realm="<token server>",service="<name>"`, Basic at the
 * realm. realmHost: 'same' (the registry's origin), 'port' (its host, another port) or 'other'
 * (another host, which wharf must be told about in authRealmHosts).
 */
export async function startGenericTokenRegistry(
  served: Served & { realmHost: 'same' | 'port' | 'other'; realmPath: string; service: string; accounts: readonly Account[]; publicRepositories: readonly string[] },
): Promise<Standin> {
  const realmOptions = { path: served.realmPath, service: served.service, accounts: served.accounts, publicRepositories: served.publicRepositories };
  const challenge = (realmUrl: string) => `Bearer realm="${realmUrl}",service="${served.service}"`;
  if (served.realmHost === 'same') return sameOriginTokenRegistry(served, realmOptions, challenge);
  const log: RecordedRequest[] = [];
  const realm = new TokenRealm(realmOptions);
  const auth = await startRecordingServer('auth', served.realmHost === 'port' ? '127.0.0.1' : 'localhost', (req, res, rec) => void (realm.handle(req, res, rec) || res.writeHead(404).end()), log);
  const realmUrl = `${auth.origin}${served.realmPath}`;
  const reg = await startRecordingServer('registry', '127.0.0.1', registryHandler({ ...served, auth: { kind: 'bearer', realm, challenge: () => challenge(realmUrl) } }), log);
  return standin({ registry: reg, auth }, realm, log);
}

/**
 * Azure Container Registry with an AAD identity: `Bearer realm="<registry>/oauth2/token",
 * service="<registry host>"`, the exchange at /oauth2/exchange beside it (standins/acr-auth.ts),
 * several repositories with one image each. realmHost 'other': both endpoints on another host
 * (localhost), as a challenge pointing away from the registry would name them.
 */
export async function startAcr(served: {
  readonly repositories: readonly string[];
  readonly tag: string;
  readonly image: TestImage;
  readonly aadTokens: readonly string[];
  readonly tenant?: string;
  readonly realmHost?: 'same' | 'other';
  readonly refreshTokenLifetimeSeconds?: number;
  readonly refreshTokenShape?: 'jwt' | 'opaque';
}): Promise<Standin & { readonly acr: AcrAuth }> {
  const log: RecordedRequest[] = [];
  const reg = await lateServer('registry', '127.0.0.1', log);
  const acr = new AcrAuth({
    service: reg.server.host,
    tenant: served.tenant,
    aadTokens: new Set(served.aadTokens),
    repositories: served.repositories,
    ...(served.refreshTokenLifetimeSeconds !== undefined ? { refreshTokenLifetimeSeconds: served.refreshTokenLifetimeSeconds } : {}),
    ...(served.refreshTokenShape ? { refreshTokenShape: served.refreshTokenShape } : {}),
  });
  const servers: Record<string, RecordingServer> = { registry: reg.server };
  let realmOrigin = reg.server.origin;
  if (served.realmHost === 'other') {
    const auth = await startRecordingServer('auth', 'localhost', (req, res, rec) => void (acr.handle(req, res, rec) || res.writeHead(404).end()), log);
    servers.auth = auth;
    realmOrigin = auth.origin;
  }
  const challenge = () => `Bearer realm="${realmOrigin}/oauth2/token",service="${reg.server.host}"`;
  const realmHere = served.realmHost === 'other' ? undefined : acr;
  const handlers = served.repositories.map((repository) => registryHandler({ ...served, repository, ...(realmHere ? { realmHere } : {}), auth: { kind: 'bearer', realm: acr, challenge } }));
  reg.set((req, res, rec) => {
    const i = served.repositories.findIndex((r) => rec.path.startsWith(`/v2/${r}/`));
    handlers[Math.max(0, i)]!(req, res, rec);
  });
  return { ...standin(servers, undefined, log), acr };
}
