// An Upstream held in memory for fast policy tests: manifests by repository and tag, every call
// counted, and switches for each way an upstream fails (down, rate-limited, slow, no HEAD).
// It answers through the same interface as the real one, so the services cannot tell.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { UpstreamRateLimitedError, UpstreamUnavailableError, type RegistryError } from '../../src/errors.ts';
import type { Upstream, UpstreamAsk, UpstreamOk } from '../../src/proxy/upstream.ts';
import { HeadNotSupportedError } from '../../src/proxy/upstream-answer.ts';
import type { UpstreamBody, UpstreamTimeouts } from '../../src/proxy/upstream-client.ts';

export type Failure = 'none' | 'down' | 'rate-limited' | 'slow';

export interface Call {
  readonly method: 'GET' | 'HEAD';
  readonly path: string;
}

const OCI = 'application/vnd.oci.image.manifest.v1+json';

/** A small valid OCI manifest; n makes it (and its digest) unique. */
export function ociManifest(n: number): { body: Buffer; digest: string; mediaType: string } {
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${String(n).padStart(64, '0')}`, size: n },
      layers: [],
    }),
  );
  return { body, digest: `sha256:${createHash('sha256').update(body).digest('hex')}`, mediaType: OCI };
}

export class MemoryUpstream implements Upstream {
  readonly name: string;
  readonly libraryPrefix = false;
  readonly offline: boolean;
  readonly staleAfterMs: number;
  readonly prefetch = false;
  readonly timeouts: UpstreamTimeouts = { connectMs: 1000, headersMs: 1000, bodyIdleMs: 1000, manifestTotalMs: 1000, blobMinBytesPerSecond: 0, blobRateWindowMs: 1000 };
  readonly calls: Call[] = [];
  readonly stale: Array<'manifest' | 'tags'> = [];
  failure: Failure = 'none';
  /** How long a 'slow' answer takes. */
  slowMs = 200;
  headSupported = true;
  readonly #tags = new Map<string, string>();
  readonly #manifests = new Map<string, Buffer>();

  constructor(opts: { name?: string; offline?: boolean; staleAfterMs?: number } = {}) {
    this.name = opts.name ?? 'memory.test';
    this.offline = opts.offline ?? false;
    this.staleAfterMs = opts.staleAfterMs ?? 50;
  }

  /** Points repository:tag at a manifest (pushes it). */
  tag(repository: string, tag: string, manifest: { body: Buffer; digest: string }): void {
    this.#manifests.set(manifest.digest, manifest.body);
    this.#tags.set(`${repository}:${tag}`, manifest.digest);
  }

  count(method: 'GET' | 'HEAD'): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  get(ask: UpstreamAsk): Promise<UpstreamOk> {
    return this.#answer('GET', ask);
  }

  head(ask: UpstreamAsk): Promise<UpstreamOk> {
    return this.#answer('HEAD', ask);
  }

  interruptedBody(err: unknown): UpstreamUnavailableError {
    return new UpstreamUnavailableError(this.name, `body interrupted: ${String(err)}`);
  }

  servedStale(kind: 'manifest' | 'tags'): void {
    this.stale.push(kind);
  }

  received(): void {}

  tooSlow(): void {}

  async #answer(method: 'GET' | 'HEAD', ask: UpstreamAsk): Promise<UpstreamOk> {
    this.calls.push({ method, path: ask.path });
    if (this.failure === 'down') throw new UpstreamUnavailableError(this.name, 'refused');
    if (this.failure === 'rate-limited') throw new UpstreamRateLimitedError(this.name, '60');
    if (this.failure === 'slow') await new Promise((r) => setTimeout(r, this.slowMs));
    if (method === 'HEAD' && !this.headSupported) throw new HeadNotSupportedError(this.name);
    const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(ask.path);
    if (!m) throw ask.notFound();
    const [, repository, reference] = m as unknown as [string, string, string];
    const digest = reference.includes(':') ? reference : this.#tags.get(`${repository}:${reference}`);
    const body = digest ? this.#manifests.get(digest) : undefined;
    if (!digest || !body) throw ask.notFound() as RegistryError;
    const headers = { 'content-type': OCI, 'docker-content-digest': digest, 'content-length': String(body.length) };
    return { status: 200, headers, body: bodyOf(method === 'GET' ? body : Buffer.alloc(0)) };
  }
}

/** An undici-like body: iterable, dumpable, destroyable. */
function bodyOf(bytes: Buffer): UpstreamBody {
  const stream = Readable.from(bytes.length > 0 ? [bytes] : []);
  return Object.assign(stream, { dump: async () => void stream.resume() }) as unknown as UpstreamBody;
}
