// Blob policy: serve from disk when cached; otherwise start (or join) the single fill for the
// digest. The fill belongs to no client: it runs to the end even if every client leaves.
import type { Logger } from 'pino';
import { BlobUnknownError } from '../errors.ts';
import type { BlobInfo, BlobStore } from '../cache/blob-store.ts';
import { BlobFill, runFill } from './blob-fill.ts';
import { askUpstream, type UpstreamHandle } from './upstream-handle.ts';
import { contentLength, upstreamAnswerError } from './upstream-answer.ts';

export type BlobSource =
  | { readonly kind: 'cached'; readonly info: BlobInfo }
  | { readonly kind: 'filling'; readonly fill: BlobFill; readonly joined: boolean };

export interface BlobHead {
  readonly size: number | undefined;
  readonly cached: boolean;
}

export class BlobService {
  readonly #store: BlobStore;
  readonly #log: Logger;
  readonly #fills = new Map<string, Promise<BlobFill>>();
  readonly #running = new Set<Promise<void>>();

  constructor(deps: { store: BlobStore; logger: Logger }) {
    this.#store = deps.store;
    this.#log = deps.logger;
  }

  async open(upstream: UpstreamHandle, repository: string, digest: string): Promise<BlobSource> {
    const inFlight = this.#fills.get(digest);
    if (inFlight) return { kind: 'filling', fill: await inFlight, joined: true };
    const info = await this.#store.stat(digest);
    if (info) return { kind: 'cached', info };
    if (upstream.offline) throw new BlobUnknownError(digest);
    // Re-check after the await: another request may have started the fill meanwhile.
    const raced = this.#fills.get(digest);
    if (raced) return { kind: 'filling', fill: await raced, joined: true };
    const starting = this.#startFill(upstream, repository, digest);
    this.#fills.set(digest, starting);
    starting.catch(() => this.#fills.delete(digest));
    return { kind: 'filling', fill: await starting, joined: false };
  }

  /** Size of a blob without downloading it: disk, a running fill, or an upstream HEAD. */
  async head(upstream: UpstreamHandle, repository: string, digest: string): Promise<BlobHead> {
    const info = await this.#store.stat(digest);
    if (info) return { size: info.size, cached: true };
    const inFlight = this.#fills.get(digest);
    if (inFlight) {
      const fill = await inFlight.catch(() => undefined);
      if (fill?.size !== undefined) return { size: fill.size, cached: false };
    }
    if (upstream.offline) throw new BlobUnknownError(digest);
    const res = await askUpstream(upstream, { method: 'HEAD', path: `/v2/${repository}/blobs/${digest}`, repository });
    await res.body.dump();
    if (res.statusCode !== 200) throw upstreamAnswerError(upstream.name, res, () => new BlobUnknownError(digest));
    return { size: contentLength(res.headers), cached: false };
  }

  /** Waits for running fills to settle (used at shutdown and by tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.#running]);
  }

  async #startFill(upstream: UpstreamHandle, repository: string, digest: string): Promise<BlobFill> {
    const res = await askUpstream(upstream, { method: 'GET', path: `/v2/${repository}/blobs/${digest}`, repository });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw upstreamAnswerError(upstream.name, res, () => new BlobUnknownError(digest));
    }
    let writer;
    try {
      writer = await this.#store.createWriter(digest);
    } catch (err) {
      res.body.destroy();
      throw err;
    }
    const fill = new BlobFill(digest, contentLength(res.headers), writer.tempPath);
    const running = runFill(fill, writer, res.body).then(() => {
      this.#fills.delete(digest);
      this.#running.delete(running);
      if (fill.state === 'failed') {
        this.#log.warn({ upstream: upstream.name, digest, err: fill.error }, 'blob fill failed; nothing cached');
      } else {
        this.#log.debug({ upstream: upstream.name, digest, size: fill.written }, 'blob cached');
      }
    });
    this.#running.add(running);
    return fill;
  }
}
