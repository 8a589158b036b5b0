// Prefetch (upstreams[].prefetch, opt-in): after wharf serves an image manifest, the blobs it
// names that are not cached yet are fetched in the background, a few at a time, so that the
// node pulling next finds them cached (Quay does this). Each is an ordinary fill: single-flight,
// verified, under the upstream's limits; one that fails is left for a client to ask again.
import type { Logger } from 'pino';
import type { StoredManifest } from '../cache/manifest-store.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { manifestRefs } from '../oci/manifest-refs.ts';
import type { BlobService } from './blob-service.ts';
import type { Upstream } from './upstream.ts';

/** Blobs of one manifest fetched at once: a prefetch never takes every turn a client could use. */
const AT_ONCE = 2;

export class PrefetchService {
  readonly #blobs: BlobService;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  /** Manifests whose blobs are being prefetched now: asked again meanwhile, nothing more starts. */
  readonly #running = new Set<string>();

  constructor(deps: { blobs: BlobService; metrics: Metrics; logger: Logger }) {
    this.#blobs = deps.blobs;
    this.#metrics = deps.metrics;
    this.#log = deps.logger;
  }

  /** A client got this manifest from this upstream's repository: fetch its blobs if the upstream wants that. */
  manifestServed(upstream: Upstream, repository: string, manifest: StoredManifest): void {
    if (!upstream.prefetch || upstream.offline || this.#running.has(manifest.digest)) return;
    const blobs = manifestRefs(manifest.body).blobs;
    if (blobs.length === 0) return; // an index: its image manifests, once asked for, bring their blobs
    this.#running.add(manifest.digest);
    void this.#fetch(upstream, repository, blobs).finally(() => this.#running.delete(manifest.digest));
  }

  async #fetch(upstream: Upstream, repository: string, digests: readonly string[]): Promise<void> {
    const queue = [...digests];
    const worker = async () => {
      for (let digest = queue.shift(); digest !== undefined; digest = queue.shift()) {
        const outcome = await this.#blobs.prefetch(upstream, repository, digest).catch((err: unknown) => {
          this.#log.debug({ upstream: upstream.name, repository, digest, err: String(err) }, 'prefetch failed');
          return 'skipped' as const;
        });
        this.#metrics.prefetches.inc({ upstream: upstream.name, outcome });
        // Started fills run on their own; waiting for each keeps AT_ONCE downloads at a time.
        if (outcome === 'started') await this.#blobs.whenFilled(digest);
      }
    };
    await Promise.all(Array.from({ length: Math.min(AT_ONCE, queue.length) }, worker));
  }
}
