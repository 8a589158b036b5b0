// Which repository may see which cached content. Manifests and blobs are stored once, by digest,
// whatever repository brought them in; they are served under repository R only when R is known
// to reference them: R's verified manifests name them (recorded here as links), or R's upstream
// confirms it with a HEAD for R, asked with R's credentials before any byte is served. Without
// this, a private layer cached for one repository would be anyone's who knows its digest, under
// any repository name (the hole distribution closes with its per-repository blob links).
import { BlobUnknownError, ManifestUnknownError } from '../errors.ts';
import type { RepoKey, StoredManifest } from '../cache/manifest-store.ts';
import { linkManifest, type LinkStore } from '../cache/manifest-links.ts';
import { UPSTREAM_MANIFEST_ACCEPT } from '../oci/media-types.ts';
import { SingleFlight } from './single-flight.ts';
import { HeadNotSupportedError } from './upstream-answer.ts';
import type { Upstream } from './upstream.ts';
import type { Logger } from 'pino';

export class RepositoryLinks {
  readonly #store: LinkStore;
  readonly #log: Logger | undefined;
  readonly #confirming = new SingleFlight<void>();

  /** logger: where links that could not be written are reported (by note*). */
  constructor(store: LinkStore, logger?: Logger) {
    this.#store = store;
    this.#log = logger;
  }

  has(repo: RepoKey, digest: string): Promise<boolean> {
    return this.#store.hasLink(repo, digest);
  }

  /**
   * linkManifest and a blob's link without waiting for the store: the answer does not wait on
   * it (a hung Redis would hold it for the command timeout). The memory layer takes the link at
   * once, so this process serves the repository at once; a failed write costs a HEAD later.
   */
  noteManifest(repo: RepoKey, manifest: StoredManifest): void {
    this.linkManifest(repo, manifest).catch((err: unknown) => this.#notWritten(repo, err));
  }

  noteBlob(repo: RepoKey, digest: string): void {
    this.#store.putLinks(repo, [digest]).catch((err: unknown) => this.#notWritten(repo, err));
  }

  #notWritten(repo: RepoKey, err: unknown): void {
    this.#log?.warn({ upstream: repo.upstream, repository: repo.repository, err: String(err) }, 'repository link not recorded');
  }

  /** Records that a verified manifest belongs to the repository, with what it names (manifest-links.ts). */
  linkManifest(repo: RepoKey, manifest: StoredManifest): Promise<void> {
    return linkManifest(this.#store, repo, manifest);
  }

  /**
   * Resolves once the repository may be served the cached digest: it is linked, or its upstream
   * confirms the repository has it (then the link is recorded). Rejects with the upstream's
   * "unknown" error, or its outage, when neither holds; offline, an unlinked digest is unknown.
   */
  async confirm(upstream: Upstream, repository: string, digest: string, kind: 'manifest' | 'blob'): Promise<void> {
    const repo = { upstream: upstream.name, repository };
    if (await this.#store.hasLink(repo, digest)) return;
    const unknown = () => (kind === 'manifest' ? new ManifestUnknownError(digest) : new BlobUnknownError(digest));
    if (upstream.offline) throw unknown();
    const key = `${upstream.name}/${repository}@${digest}`;
    await this.#confirming.run(key, async () => {
      const ask = {
        path: `/v2/${repository}/${kind === 'manifest' ? 'manifests' : 'blobs'}/${digest}`,
        repository,
        accept: kind === 'manifest' ? UPSTREAM_MANIFEST_ACCEPT : undefined,
        small: true,
        notFound: unknown,
      };
      // Some registries answer no HEAD for manifests; a GET (small, bounded) says the same.
      const res = await upstream.head(ask).catch((err: unknown) => {
        if (err instanceof HeadNotSupportedError) return upstream.get(ask);
        throw err;
      });
      await res.body.dump();
      const manifest = kind === 'manifest' ? await this.#store.getManifest(digest) : undefined;
      if (manifest) await this.linkManifest(repo, manifest);
      else await this.#store.putLinks(repo, [digest]);
    }).result;
  }
}
