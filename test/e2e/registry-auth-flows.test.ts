// Each registry's real auth flow, against a stand-in that reproduces it (test/support/
// registry-standins.ts), with wharf configured for it as the README shows: pull one image
// through wharf (manifest by tag, then every blob, bytes checked by digest) and check what wharf
// sent where: the token request (realm, service, scope, credentials), that credentials never
// reach a host they must not (a CDN, a redirect target, a realm wharf was not told to trust),
// anonymous pulls where the registry allows them, and that a wrong credential gives the client
// an honest error after a bounded number of token requests.
//
// All stand-ins are on loopback. wharf's dial policy lets an upstream on a loopback address
// redirect to other loopback hosts (dial-policy.ts: the upstream's own kind of network), so no
// redirectHosts are needed here; a user whose registry redirects to a private host lists it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogLines } from '../support/log-lines.ts';
import { metricValue } from '../support/metrics.ts';
import {
  startArtifactory,
  startDockerHub,
  startGenericTokenRegistry,
  startGhcr,
  startGitlab,
  startGoogleRegistry,
  startHarbor,
  startK8sRegistry,
  startQuay,
  type ArtifactoryShape,
  type RecordedRequest,
  type Standin,
} from '../support/registry-standins.ts';
import { makeImage, sha256, type TestImage } from '../support/test-images.ts';
import { startWharf, type TestWharf, type WharfOptions } from '../support/wharf.ts';

type UpstreamConfig = WharfOptions['upstreams'][number] & { passwordFile?: string };

const ACCEPT = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.oci.image.index.v1+json'].join(', ');

let secretsDir: string;
const running: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  secretsDir = await mkdtemp(join(tmpdir(), 'wharf-registry-secrets-'));
});
afterAll(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
  await rm(secretsDir, { recursive: true, force: true });
});

/** A passwordFile as a user writes it (a trailing newline, which wharf strips). */
async function secretFile(name: string, secret: string): Promise<string> {
  const path = join(secretsDir, name);
  await writeFile(path, `${secret}\n`, { mode: 0o600 });
  return path;
}

function image(name: string): TestImage {
  return makeImage({ name, files: { [`${name}.txt`]: `${name} through wharf\n` }, extraLayerBytes: 64 << 10 });
}

async function standin(started: Promise<Standin>): Promise<Standin> {
  const s = await started;
  running.push(s);
  return s;
}

async function wharfFor(upstream: UpstreamConfig, logs?: LogLines): Promise<TestWharf> {
  const w = await startWharf({ upstreams: [upstream], tagTtlSeconds: 0, ...(logs ? { logDestination: logs, logLevel: 'info' } : {}) });
  running.push(w);
  return w;
}

/** Pulls name/repository:tag through wharf (host-in-path), checking every body against its digest. */
async function pull(wharf: TestWharf, name: string, repository: string, tag: string, img: TestImage): Promise<void> {
  const manifest = await fetch(`${wharf.url}/v2/${name}/${repository}/manifests/${tag}`, { headers: { accept: ACCEPT } });
  const body = Buffer.from(await manifest.arrayBuffer());
  expect(manifest.status, body.toString()).toBe(200);
  expect(sha256(body)).toBe(img.manifest.digest);
  const parsed = JSON.parse(body.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  for (const digest of [parsed.config.digest, ...parsed.layers.map((l) => l.digest)]) {
    const blob = await fetch(`${wharf.url}/v2/${name}/${repository}/blobs/${digest}`);
    const bytes = Buffer.from(await blob.arrayBuffer());
    expect(blob.status, `${digest}: ${bytes.toString().slice(0, 200)}`).toBe(200);
    expect(sha256(bytes)).toBe(digest);
  }
}

/** The client's answer for the manifest, with the registry error code. */
async function manifestAnswer(wharf: TestWharf, name: string, repository: string, tag: string): Promise<{ status: number; code: string | undefined }> {
  const res = await fetch(`${wharf.url}/v2/${name}/${repository}/manifests/${tag}`, { headers: { accept: ACCEPT } });
  const body = (await res.json().catch(() => ({}))) as { errors?: Array<{ code: string }> };
  return { status: res.status, code: body.errors?.[0]?.code };
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Requests that carried any Authorization (Basic or Bearer). */
function withAuthorization(requests: readonly RecordedRequest[]): RecordedRequest[] {
  return requests.filter((r) => r.headers.authorization !== undefined);
}

/** Requests that carried these Basic credentials. */
function carrying(requests: readonly RecordedRequest[], authorization: string): RecordedRequest[] {
  return requests.filter((r) => r.headers.authorization === authorization);
}

describe('Docker Hub: token from auth.docker.io, blobs 307 to a CDN, RateLimit headers', () => {
  const img = image('hub');
  const PAT = 'dckr_pat_wharf-test-0123456789';
  const account = { username: 'wharfuser', password: PAT };
  let hub: Standin;

  beforeAll(async () => {
    hub = await standin(startDockerHub({ repository: 'library/alpine', tag: '3.20', image: img, accounts: [account], publicRepositories: ['library/alpine'] }));
  });

  it('pulls anonymously with one token for the scope; the CDN gets no Authorization', async () => {
    const wharf = await wharfFor({ name: 'docker.io', url: hub.url });
    const since = hub.requests.length;
    // alpine, as docker pull alpine names it: wharf adds library/ for Docker Hub.
    await pull(wharf, 'docker.io', 'alpine', '3.20', img);
    const seen = hub.requests.slice(since);
    const tokens = seen.filter((r) => r.server === 'auth');
    expect(tokens).toHaveLength(1);
    expect(tokens[0]!.path).toBe('/token');
    expect(tokens[0]!.query.get('service')).toBe('registry.docker.io');
    expect(tokens[0]!.query.get('scope')).toBe('repository:library/alpine:pull');
    expect(tokens[0]!.headers.authorization).toBeUndefined();
    const cdn = seen.filter((r) => r.server === 'cdn');
    expect(cdn.length).toBe(img.layers.length + 1);
    expect(withAuthorization(cdn)).toEqual([]);
    // The pull left the upstream's RateLimit-Remaining in the metric.
    expect(await metricValue(wharf.url, 'wharf_upstream_ratelimit_remaining', { upstream: 'docker.io' })).toBe(99);
  });

  it('sends the PAT (from passwordFile) to the token realm only: never to the registry or the CDN', async () => {
    const wharf = await wharfFor({ name: 'docker.io', url: hub.url, username: account.username, passwordFile: await secretFile('hub-pat', PAT) });
    const since = hub.requests.length;
    await pull(wharf, 'docker.io', 'library/alpine', '3.20', img);
    const seen = hub.requests.slice(since);
    const credentialed = carrying(seen, basic(account.username, PAT));
    expect(credentialed.length).toBe(1);
    expect(credentialed.every((r) => r.server === 'auth' && r.path === '/token')).toBe(true);
    expect(withAuthorization(seen.filter((r) => r.server === 'cdn'))).toEqual([]);
    expect(seen.filter((r) => r.server === 'registry').every((r) => r.headers.authorization === undefined || r.headers.authorization.startsWith('Bearer '))).toBe(true);
  });

  it('a wrong PAT: the client gets 403 DENIED, after a bounded number of token requests', async () => {
    const wharf = await wharfFor({ name: 'docker.io', url: hub.url, username: account.username, password: 'dckr_pat_revoked' });
    const since = hub.realm!.requests.length;
    expect(await manifestAnswer(wharf, 'docker.io', 'library/alpine', '3.20')).toEqual({ status: 403, code: 'DENIED' });
    expect(hub.realm!.requests.length - since).toBeLessThanOrEqual(2);
  });

  it('an unknown repository (Docker Hub answers 401 with a fresh token) is 404 to the client', async () => {
    const wharf = await wharfFor({ name: 'docker.io', url: hub.url });
    const since = hub.realm!.requests.length;
    const answer = await manifestAnswer(wharf, 'docker.io', 'library/nosuchimage', 'latest');
    expect(answer.status).toBe(404);
    expect(hub.realm!.requests.length - since).toBeLessThanOrEqual(2);
  });
});

describe('GHCR: anonymous token with the scope in the challenge, user:PAT for private packages', () => {
  const img = image('ghcr');
  const account = { username: 'octocat', password: 'ghp_wharfTestToken0123456789' };
  let ghcr: Standin;

  beforeAll(async () => {
    ghcr = await standin(startGhcr({ repository: 'wharf-org/app', tag: 'v1', image: img, accounts: [account], publicRepositories: ['wharf-org/app'] }));
  });

  it('pulls a public package with an anonymous token for service ghcr.io and the challenge\'s scope', async () => {
    const wharf = await wharfFor({ name: 'ghcr.io', url: ghcr.url });
    await pull(wharf, 'ghcr.io', 'wharf-org/app', 'v1', img);
    const tokens = ghcr.realm!.requests;
    expect(tokens).toHaveLength(1);
    expect(tokens[0]!.query.get('service')).toBe('ghcr.io');
    expect(tokens[0]!.query.get('scope')).toBe('repository:wharf-org/app:pull');
    expect(tokens[0]!.headers.authorization).toBeUndefined();
  });

  it('pulls with user:PAT at the token endpoint; a wrong PAT is 403 DENIED, not a loop', async () => {
    const good = await wharfFor({ name: 'ghcr.io', url: ghcr.url, username: account.username, passwordFile: await secretFile('ghcr-pat', account.password) });
    let since = ghcr.requests.length;
    await pull(good, 'ghcr.io', 'wharf-org/app', 'v1', img);
    const credentialed = carrying(ghcr.requests.slice(since), basic(account.username, account.password));
    expect(credentialed.map((r) => r.path)).toEqual(['/token']);

    const bad = await wharfFor({ name: 'ghcr.io', url: ghcr.url, username: account.username, password: 'ghp_wrong' });
    since = ghcr.realm!.requests.length;
    expect(await manifestAnswer(bad, 'ghcr.io', 'wharf-org/app', 'v1')).toEqual({ status: 403, code: 'DENIED' });
    expect(ghcr.realm!.requests.length - since).toBeLessThanOrEqual(2);
  });
});

describe('Quay: one challenge line listing Basic and Bearer, robot accounts, public repositories without a challenge', () => {
  const img = image('quay');
  const robot = { username: 'wharforg+puller', password: 'QUAYROBOTTOKEN0123456789ABCDEF', repositories: ['wharforg/private'] };
  let quay: Standin;
  let quayPublic: Standin;

  beforeAll(async () => {
    quay = await standin(startQuay({ repository: 'wharforg/private', tag: 'latest', image: img, accounts: [robot], openRepositories: [] }));
    quayPublic = await standin(startQuay({ repository: 'wharforg/public', tag: 'latest', image: img, accounts: [robot], openRepositories: ['wharforg/public'] }));
  });

  it('answers the Bearer part with the robot org+name:token at /v2/auth (service quay.io)', async () => {
    const wharf = await wharfFor({ name: 'quay.io', url: quay.url, username: robot.username, passwordFile: await secretFile('quay-robot', robot.password) });
    await pull(wharf, 'quay.io', 'wharforg/private', 'latest', img);
    const tokens = quay.realm!.requests;
    expect(tokens).toHaveLength(1);
    expect(tokens[0]!.path).toBe('/v2/auth');
    expect(tokens[0]!.query.get('service')).toBe('quay.io');
    expect(tokens[0]!.query.get('scope')).toBe('repository:wharforg/private:pull');
    expect(tokens[0]!.headers.authorization).toBe(basic(robot.username, robot.password));
    // The Basic part of the challenge was not taken: the robot token never went to the registry API.
    expect(carrying(quay.requests, basic(robot.username, robot.password)).every((r) => r.path === '/v2/auth')).toBe(true);
  });

  it('pulls a public repository with no token at all', async () => {
    const wharf = await wharfFor({ name: 'quay.io', url: quayPublic.url });
    await pull(wharf, 'quay.io', 'wharforg/public', 'latest', img);
    expect(quayPublic.realm!.requests).toEqual([]);
    expect(withAuthorization(quayPublic.requests)).toEqual([]);
  });

  it('a wrong robot token is 403 DENIED, after a bounded number of token requests', async () => {
    const wharf = await wharfFor({ name: 'quay.io', url: quay.url, username: robot.username, password: 'WRONG' });
    const since = quay.realm!.requests.length;
    expect(await manifestAnswer(wharf, 'quay.io', 'wharforg/private', 'latest')).toEqual({ status: 403, code: 'DENIED' });
    expect(quay.realm!.requests.length - since).toBeLessThanOrEqual(2);
  });
});

describe('registry.k8s.io: manifests and blobs 307 to another registry under k8s-artifacts-prod/images/', () => {
  const img = image('pause');

  for (const targetChallenges of [false, true]) {
    it(`pulls through the redirects; the target ${targetChallenges ? 'challenges and is answered for its own host and the redirected path' : 'answers anonymously'}`, async () => {
      const k8s = await standin(startK8sRegistry({ repository: 'pause', tag: '3.10', image: img, targetChallenges }));
      const wharf = await wharfFor({ name: 'registry.k8s.io', url: k8s.url });
      await pull(wharf, 'registry.k8s.io', 'pause', '3.10', img);
      const target = k8s.requests.filter((r) => r.server === 'target');
      const content = target.filter((r) => /\/(manifests|blobs)\//.test(r.path));
      expect(content.every((r) => r.path.startsWith('/v2/k8s-artifacts-prod/images/pause/'))).toBe(true);
      expect(content.some((r) => r.path.includes('/manifests/3.10'))).toBe(true);
      // The redirector never gets a token: nothing was retried against the original origin.
      expect(withAuthorization(k8s.requests.filter((r) => r.server === 'registry'))).toEqual([]);
      if (!targetChallenges) {
        expect(withAuthorization(target)).toEqual([]);
        return;
      }
      const tokens = k8s.realm!.requests;
      expect(tokens.length).toBe(1);
      expect(tokens[0]!.path).toBe('/v2/token');
      // AR's realm takes no service; the scope is the redirected path's repository.
      expect(tokens[0]!.query.has('service')).toBe(false);
      expect(tokens[0]!.query.get('scope')).toBe('repository:k8s-artifacts-prod/images/pause:pull');
    });
  }
});

describe('GCR / Artifact Registry: realm /v2/token (AR: no service), Basic oauth2accesstoken or _json_key', () => {
  const img = image('gcr');
  const accessToken = 'ya29.wharf-test-access-token';
  const jsonKey = JSON.stringify({ type: 'service_account', project_id: 'wharf-test', private_key_id: 'k1', client_email: 'puller@wharf-test.iam.gserviceaccount.com' }, null, 2);
  const accounts = [
    { username: 'oauth2accesstoken', password: accessToken },
    { username: '_json_key', password: jsonKey },
  ];

  it('GCR: oauth2accesstoken:<access token> at the realm with service gcr.io', async () => {
    const gcr = await standin(startGoogleRegistry({ flavor: 'gcr', repository: 'wharf-test/app', tag: 'v1', image: img, accounts, publicRepositories: [] }));
    const wharf = await wharfFor({ name: 'gcr.io', url: gcr.url, username: 'oauth2accesstoken', passwordFile: await secretFile('gcr-token', accessToken) });
    await pull(wharf, 'gcr.io', 'wharf-test/app', 'v1', img);
    const tokens = gcr.realm!.requests;
    expect(tokens).toHaveLength(1);
    expect(tokens[0]!.query.get('service')).toBe('gcr.io');
    expect(tokens[0]!.query.get('scope')).toBe('repository:wharf-test/app:pull');
    expect(tokens[0]!.headers.authorization).toBe(basic('oauth2accesstoken', accessToken));
  });

  it('Artifact Registry: _json_key:<key file> (multi-line JSON from passwordFile), no service sent', async () => {
    const ar = await standin(startGoogleRegistry({ flavor: 'artifact-registry', repository: 'wharf-test/images/app', tag: 'v1', image: img, accounts, publicRepositories: [] }));
    const wharf = await wharfFor({ name: 'us-docker.pkg.dev', url: ar.url, username: '_json_key', passwordFile: await secretFile('ar-key.json', jsonKey) });
    await pull(wharf, 'us-docker.pkg.dev', 'wharf-test/images/app', 'v1', img);
    const tokens = ar.realm!.requests;
    expect(tokens).toHaveLength(1);
    expect(tokens[0]!.query.has('service')).toBe(false);
    expect(tokens[0]!.query.get('scope')).toBe('repository:wharf-test/images/app:pull');
    expect(tokens[0]!.headers.authorization).toBe(basic('_json_key', jsonKey));
  });

  it('anonymous pull of a public repository (a scope is always sent); an expired access token is 403 DENIED', async () => {
    const ar = await standin(startGoogleRegistry({ flavor: 'artifact-registry', repository: 'distroless/static', tag: 'nonroot', image: img, accounts, publicRepositories: ['distroless/static'] }));
    const anon = await wharfFor({ name: 'us-docker.pkg.dev', url: ar.url });
    await pull(anon, 'us-docker.pkg.dev', 'distroless/static', 'nonroot', img);
    expect(ar.realm!.requests.every((r) => r.query.get('scope') === 'repository:distroless/static:pull' && r.headers.authorization === undefined)).toBe(true);

    const expired = await wharfFor({ name: 'us-docker.pkg.dev', url: ar.url, username: 'oauth2accesstoken', password: 'ya29.expired' });
    const since = ar.realm!.requests.length;
    expect(await manifestAnswer(expired, 'us-docker.pkg.dev', 'distroless/static', 'nonroot')).toEqual({ status: 403, code: 'DENIED' });
    expect(ar.realm!.requests.length - since).toBeLessThanOrEqual(2);
  });
});

describe('GitLab: realm on another host, literal service=container_registry, job and deploy tokens', () => {
  const img = image('gitlab');
  const jobToken = { username: 'gitlab-ci-token', password: 'glcbt-64_wharfJobToken', repositories: ['wharf-group/app'] };
  const deployToken = { username: 'gitlab+deploy-token-42', password: 'gldt-wharfDeployToken', repositories: ['wharf-group/app'] };
  let gitlab: Standin;

  beforeAll(async () => {
    gitlab = await standin(startGitlab({ repository: 'wharf-group/app', tag: 'main', image: img, accounts: [jobToken, deployToken], publicRepositories: [] }));
  });

  for (const token of [jobToken, deployToken]) {
    it(`${token.username}: the token request goes to the realm host with service=container_registry`, async () => {
      // On gitlab.com the realm (gitlab.com) shares registry.gitlab.com's registrable domain and
      // needs no listing; the stand-in's realm is on "localhost", which has none, so it is listed
      // as a self-hosted GitLab whose auth host is elsewhere would be.
      const wharf = await wharfFor({
        name: 'registry.gitlab.com',
        url: gitlab.url,
        username: token.username,
        passwordFile: await secretFile(`gitlab-${token.username}`, token.password),
        authRealmHosts: [gitlab.servers.auth!.host],
      });
      const since = gitlab.requests.length;
      await pull(wharf, 'registry.gitlab.com', 'wharf-group/app', 'main', img);
      const tokens = gitlab.requests.slice(since).filter((r) => r.server === 'auth');
      expect(tokens).toHaveLength(1);
      expect(tokens[0]!.path).toBe('/jwt/auth');
      expect(tokens[0]!.query.get('service')).toBe('container_registry');
      expect(tokens[0]!.query.get('scope')).toBe('repository:wharf-group/app:pull');
      expect(tokens[0]!.headers.authorization).toBe(basic(token.username, token.password));
      expect(carrying(gitlab.requests.slice(since), basic(token.username, token.password)).every((r) => r.server === 'auth')).toBe(true);
    });
  }

  it('without authRealmHosts the token is withheld from the other host, said in the log, and the pull fails without credentials', async () => {
    const logs = new LogLines();
    const wharf = await wharfFor({ name: 'registry.gitlab.com', url: gitlab.url, username: jobToken.username, password: jobToken.password }, logs);
    const since = gitlab.requests.length;
    // Denied (not "manifest unknown"): the credentials wharf withheld were what the realm needed.
    expect(await manifestAnswer(wharf, 'registry.gitlab.com', 'wharf-group/app', 'main')).toEqual({ status: 403, code: 'DENIED' });
    expect(carrying(gitlab.requests.slice(since), basic(jobToken.username, jobToken.password))).toEqual([]);
    expect(gitlab.requests.slice(since).filter((r) => r.server === 'auth').length).toBeLessThanOrEqual(2);
    await logs.waitFor((l) => JSON.stringify(l).includes('authRealmHosts'));
  });

  it('a revoked job token is 403 DENIED, after a bounded number of token requests', async () => {
    const wharf = await wharfFor({ name: 'registry.gitlab.com', url: gitlab.url, username: 'gitlab-ci-token', password: 'glcbt-expired', authRealmHosts: [gitlab.servers.auth!.host] });
    const since = gitlab.realm!.requests.length;
    expect(await manifestAnswer(wharf, 'registry.gitlab.com', 'wharf-group/app', 'main')).toEqual({ status: 403, code: 'DENIED' });
    expect(gitlab.realm!.requests.length - since).toBeLessThanOrEqual(2);
  });
});

describe('Harbor: realm /service/token, service harbor-registry, robot$ accounts', () => {
  const img = image('harbor');
  const robot = { username: 'robot$wharf+puller', password: 'HarborRobotSecret0123', repositories: ['wharf/app'] };
  let harbor: Standin;

  beforeAll(async () => {
    harbor = await standin(startHarbor({ repository: 'wharf/app', tag: '1.0', image: img, accounts: [robot], publicRepositories: [] }));
  });

  it('pulls with robot$project+name:secret at /service/token', async () => {
    const wharf = await wharfFor({ name: 'harbor.example.com', url: harbor.url, username: robot.username, passwordFile: await secretFile('harbor-robot', robot.password) });
    await pull(wharf, 'harbor.example.com', 'wharf/app', '1.0', img);
    const tokens = harbor.realm!.requests;
    expect(tokens).toHaveLength(1);
    expect(tokens[0]!.path).toBe('/service/token');
    expect(tokens[0]!.query.get('service')).toBe('harbor-registry');
    expect(tokens[0]!.headers.authorization).toBe(basic(robot.username, robot.password));
  });

  it('anonymous against a private project, and a wrong robot secret: an error, never a loop', async () => {
    const anon = await wharfFor({ name: 'harbor.example.com', url: harbor.url });
    let since = harbor.realm!.requests.length;
    // With no credentials configured, a 401 to a fresh anonymous token cannot be told from a
    // repository that does not exist (Docker Hub answers both so): wharf says unknown.
    expect(await manifestAnswer(anon, 'harbor.example.com', 'wharf/app', '1.0')).toEqual({ status: 404, code: 'MANIFEST_UNKNOWN' });
    expect(harbor.realm!.requests.length - since).toBeLessThanOrEqual(2);

    const wrong = await wharfFor({ name: 'harbor.example.com', url: harbor.url, username: robot.username, password: 'wrong' });
    since = harbor.realm!.requests.length;
    expect(await manifestAnswer(wrong, 'harbor.example.com', 'wharf/app', '1.0')).toEqual({ status: 403, code: 'DENIED' });
    expect(harbor.realm!.requests.length - since).toBeLessThanOrEqual(2);
  });
});

describe('Artifactory: three challenge shapes, user:access-token', () => {
  const img = image('artifactory');
  const account = { username: 'ci-bot', password: 'cmVmdGtuOjAxOjE3wharfAccessToken' };
  const shapes: Array<{ shape: ArtifactoryShape; repository: string; realmPath: string | undefined }> = [
    // Repository path method: the repository key is the first path segment, the realm lives under it.
    { shape: 'repo-path', repository: 'docker-remote/library/nginx', realmPath: '/artifactory/api/docker/docker-remote/v2/token' },
    // Subdomain / port method: the registry is the repository; realm /v2/token, no service.
    { shape: 'no-service', repository: 'library/nginx', realmPath: '/v2/token' },
    { shape: 'basic', repository: 'library/nginx', realmPath: undefined },
  ];

  for (const { shape, repository, realmPath } of shapes) {
    describe(shape, () => {
      let art: Standin;
      beforeAll(async () => {
        art = await standin(startArtifactory({ shape, repoKey: 'docker-remote', repository, tag: '1.27', image: img, accounts: [account] }));
      });

      it('pulls with user:access-token', async () => {
        const wharf = await wharfFor({ name: 'example.jfrog.io', url: art.url, username: account.username, passwordFile: await secretFile(`art-${shape}`, account.password) });
        await pull(wharf, 'example.jfrog.io', repository, '1.27', img);
        if (realmPath === undefined) {
          // Basic: the credentials go to the registry's own origin, which is the only host there is.
          expect(carrying(art.requests, basic(account.username, account.password)).length).toBeGreaterThan(0);
          expect(art.requests.every((r) => r.server === 'registry')).toBe(true);
          return;
        }
        const tokens = art.realm!.requests;
        expect(tokens).toHaveLength(1);
        expect(tokens[0]!.path).toBe(realmPath);
        expect(tokens[0]!.query.get('service') ?? undefined).toBe(shape === 'repo-path' ? art.registry.host : undefined);
        expect(tokens[0]!.query.get('scope')).toBe(`repository:${repository}:pull`);
        expect(tokens[0]!.headers.authorization).toBe(basic(account.username, account.password));
      });

      it('a wrong access token is 403 DENIED, not a loop', async () => {
        const wharf = await wharfFor({ name: 'example.jfrog.io', url: art.url, username: account.username, password: 'expired-token' });
        const since = art.requests.length;
        expect(await manifestAnswer(wharf, 'example.jfrog.io', repository, '1.27')).toEqual({ status: 403, code: 'DENIED' });
        expect(art.requests.length - since).toBeLessThanOrEqual(4);
      });
    });
  }
});

describe('generic token flow (registry:2 / Portus / docker_auth; IBM Cloud, Alibaba, DigitalOcean use it)', () => {
  const img = image('generic');
  const cases = [
    // Realm on the registry itself.
    { title: 'realm on the registry', realmHost: 'same' as const, realmPath: '/v2/token', service: 'registry.example.com', account: { username: 'iamapikey', password: 'ibm-api-key-0123' } },
    // A token server beside the registry (docker_auth, Portus), on another port of its host.
    { title: 'token server on another port', realmHost: 'port' as const, realmPath: '/auth', service: 'Docker registry', account: { username: 'portus-user', password: 'portus-app-token' } },
    // A realm on another host the operator lists in authRealmHosts (loopback names have no registrable domain).
    { title: 'realm on another host, listed in authRealmHosts', realmHost: 'other' as const, realmPath: '/v2/registry/auth', service: 'registry.example.com', account: { username: 'do-api-token', password: 'do-api-token' } },
  ];

  for (const c of cases) {
    it(`${c.title}: pulls with Basic at the realm, service and scope as challenged; a wrong password is 403 DENIED`, async () => {
      const reg = await standin(startGenericTokenRegistry({ realmHost: c.realmHost, realmPath: c.realmPath, service: c.service, repository: 'team/app', tag: 'v2', image: img, accounts: [c.account], publicRepositories: [] }));
      const authRealmHosts = c.realmHost === 'other' ? [reg.servers.auth!.host] : [];
      const wharf = await wharfFor({ name: 'registry.example.com', url: reg.url, username: c.account.username, passwordFile: await secretFile(`generic-${c.realmHost}`, c.account.password), authRealmHosts });
      await pull(wharf, 'registry.example.com', 'team/app', 'v2', img);
      const tokens = reg.realm!.requests;
      expect(tokens).toHaveLength(1);
      expect(tokens[0]!.path).toBe(c.realmPath);
      expect(tokens[0]!.query.get('service')).toBe(c.service);
      expect(tokens[0]!.query.get('scope')).toBe('repository:team/app:pull');
      expect(tokens[0]!.headers.authorization).toBe(basic(c.account.username, c.account.password));

      const wrong = await wharfFor({ name: 'registry.example.com', url: reg.url, username: c.account.username, password: 'wrong', authRealmHosts });
      const since = reg.realm!.requests.length;
      expect(await manifestAnswer(wrong, 'registry.example.com', 'team/app', 'v2')).toEqual({ status: 403, code: 'DENIED' });
      expect(reg.realm!.requests.length - since).toBeLessThanOrEqual(2);
    });
  }
});
