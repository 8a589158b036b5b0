// Pushes test images into the test upstream over the distribution HTTP API (monolithic blob
// uploads, manifests by digest and tag), answering a Bearer challenge like docker push does.
import { parseAuthChallenge } from '../../src/proxy/auth-challenge.ts';
import type { TestImage, TestIndex } from './test-images.ts';

export async function pushImage(registryUrl: string, repo: string, tag: string, image: TestImage): Promise<void> {
  const session = new PushSession(registryUrl, repo);
  for (const blob of [image.config, ...image.layers]) await session.blob(blob.digest, blob.body);
  await session.manifest(tag, image.manifest);
}

/** Each image by digest, then the index under the tag. */
export async function pushIndex(registryUrl: string, repo: string, tag: string, index: TestIndex, images: readonly TestImage[]): Promise<void> {
  const session = new PushSession(registryUrl, repo);
  for (const image of images) {
    for (const blob of [image.config, ...image.layers]) await session.blob(blob.digest, blob.body);
    await session.manifest(image.manifest.digest, image.manifest);
  }
  await session.manifest(tag, index);
}

/** One manifest (an artifact, a referrers tag index) whose blobs are already there, by digest or tag. */
export async function pushManifest(registryUrl: string, repo: string, reference: string, manifest: TestIndex): Promise<void> {
  await new PushSession(registryUrl, repo).manifest(reference, manifest);
}

class PushSession {
  readonly #base: string;
  readonly #repo: string;
  #authorization: string | undefined;

  constructor(base: string, repo: string) {
    this.#base = base;
    this.#repo = repo;
  }

  async blob(digest: string, body: Buffer): Promise<void> {
    const head = await this.#fetch(`/v2/${this.#repo}/blobs/${digest}`, { method: 'HEAD' });
    if (head.status === 200) return;
    const start = await this.#fetch(`/v2/${this.#repo}/blobs/uploads/`, { method: 'POST' });
    await expectStatus(start, 202, `start upload of ${digest}`);
    const location = new URL(start.headers.get('location') ?? '', this.#base);
    location.searchParams.set('digest', digest);
    const put = await this.#fetch(location.pathname + location.search, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    await expectStatus(put, 201, `upload of ${digest}`);
  }

  async manifest(reference: string, manifest: { digest: string; mediaType: string; body: Buffer }): Promise<void> {
    const res = await this.#fetch(`/v2/${this.#repo}/manifests/${reference}`, {
      method: 'PUT',
      headers: { 'content-type': manifest.mediaType },
      body: manifest.body,
    });
    await expectStatus(res, 201, `manifest ${this.#repo}:${reference}`);
    const digest = res.headers.get('docker-content-digest');
    if (digest !== manifest.digest) throw new Error(`registry stored ${this.#repo}:${reference} as ${digest}, expected ${manifest.digest}`);
  }

  /** One request; on a Bearer challenge fetch a push token once and retry. */
  async #fetch(path: string, init: { method: string; headers?: Record<string, string>; body?: Buffer }): Promise<Response> {
    const send = () =>
      fetch(new URL(path, this.#base), {
        method: init.method,
        headers: { ...init.headers, ...(this.#authorization ? { authorization: this.#authorization } : {}) },
        body: init.body,
        redirect: 'manual',
      });
    const res = await send();
    if (res.status !== 401 || this.#authorization) return res;
    await res.arrayBuffer();
    const challenge = parseAuthChallenge(res.headers.get('www-authenticate') ?? undefined);
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) throw new Error(`push to ${this.#base} needs auth this helper cannot do`);
    const tokenUrl = new URL(challenge.params.realm);
    if (challenge.params.service) tokenUrl.searchParams.set('service', challenge.params.service);
    tokenUrl.searchParams.set('scope', `repository:${this.#repo}:pull,push`);
    const tokenRes = await fetch(tokenUrl);
    if (tokenRes.status !== 200) throw new Error(`push token: HTTP ${tokenRes.status}: ${await tokenRes.text()}`);
    const { token } = (await tokenRes.json()) as { token: string };
    this.#authorization = `Bearer ${token}`;
    return send();
  }
}

async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  if (res.status === status) {
    if (res.body) await res.arrayBuffer();
    return;
  }
  throw new Error(`${what}: expected HTTP ${status}, got ${res.status}: ${await res.text()}`);
}
