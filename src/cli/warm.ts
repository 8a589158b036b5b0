// `wharf warm`: pulls images through a running wharf so they are cached before they are needed
// (a rollout, a build farm going offline). It asks wharf exactly as a client would, so every
// blob goes through the same single-flight fills and digest checks, and a blob already cached
// costs nothing upstream.
import { request, type Dispatcher } from 'undici';
import { manifestRefs } from '../oci/manifest-refs.ts';
import { parseImageReference } from '../oci/reference.ts';
import { UPSTREAM_MANIFEST_ACCEPT } from '../oci/media-types.ts';

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export interface WarmOptions {
  /** Base URL of the running wharf, e.g. http://127.0.0.1:5000 */
  readonly url: string;
  /** Platforms to warm from multi-platform images; empty means all of them. */
  readonly platforms: readonly Platform[];
  readonly concurrency: number;
  readonly dispatcher?: Dispatcher;
}

export type WarmEvent =
  | { readonly type: 'planned'; readonly ref: string; readonly blobs: number; readonly bytes: number }
  | { readonly type: 'blob'; readonly ref: string; readonly digest: string; readonly bytes: number; readonly cached: boolean }
  | { readonly type: 'progress'; readonly bytes: number }
  | { readonly type: 'failed'; readonly ref: string; readonly error: string };

export interface WarmSummary {
  readonly images: number;
  readonly fetchedBlobs: number;
  readonly fetchedBytes: number;
  readonly cachedBlobs: number;
  readonly failed: ReadonlyArray<{ ref: string; error: string }>;
}

interface BlobJob {
  readonly ref: string;
  readonly path: string;
  readonly digest: string;
  readonly size: number;
}

export class WarmError extends Error {}

export async function warm(refs: readonly string[], options: WarmOptions, onEvent: (e: WarmEvent) => void): Promise<WarmSummary> {
  const failed: Array<{ ref: string; error: string }> = [];
  const fail = (ref: string, err: unknown) => {
    const error = err instanceof Error ? err.message : String(err);
    failed.push({ ref, error });
    onEvent({ type: 'failed', ref, error });
  };
  // Manifests first (they are small), so the total is known before the bytes flow.
  const jobs = new Map<string, BlobJob>();
  for (const text of refs) {
    try {
      const planned = await planImage(text, options);
      for (const job of planned) if (!jobs.has(job.digest)) jobs.set(job.digest, job);
      onEvent({ type: 'planned', ref: text, blobs: planned.length, bytes: planned.reduce((s, j) => s + j.size, 0) });
    } catch (err) {
      fail(text, err);
    }
  }
  let fetchedBlobs = 0;
  let fetchedBytes = 0;
  let cachedBlobs = 0;
  const queue = [...jobs.values()];
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      try {
        const { cached, bytes } = await fetchBlob(job, options, (n) => onEvent({ type: 'progress', bytes: n }));
        if (cached) cachedBlobs++;
        else {
          fetchedBlobs++;
          fetchedBytes += bytes;
        }
        onEvent({ type: 'blob', ref: job.ref, digest: job.digest, bytes, cached });
      } catch (err) {
        fail(job.ref, err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  return { images: refs.length, fetchedBlobs, fetchedBytes, cachedBlobs, failed };
}

/** Resolves one reference to the blobs to fetch, fetching (and so caching) its manifests. */
async function planImage(text: string, options: WarmOptions): Promise<BlobJob[]> {
  const ref = parseImageReference(text);
  const base = `${options.url}/v2/${ref.registry}/${ref.repository}`;
  const top = await getManifest(`${base}/manifests/${ref.digest ?? ref.tag}`, options);
  const refs = manifestRefs(top.body);
  const images = refs.manifests.length > 0 ? refs.manifests.filter((m) => wanted(m.platform, options.platforms)) : [];
  if (refs.manifests.length > 0 && images.length === 0) throw new WarmError(`${text}: no manifest for ${options.platforms.map(platformText).join(', ')}`);
  const blobDescriptors = refs.manifests.length > 0 ? [] : descriptors(top.body);
  for (const image of images) blobDescriptors.push(...descriptors((await getManifest(`${base}/manifests/${image.digest}`, options)).body));
  return blobDescriptors.map((d) => ({ ref: text, path: `${base}/blobs/${d.digest}`, digest: d.digest, size: d.size }));
}

async function getManifest(url: string, options: WarmOptions): Promise<{ body: Buffer }> {
  const res = await request(url, { headers: { accept: UPSTREAM_MANIFEST_ACCEPT }, dispatcher: options.dispatcher });
  const body = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== 200) throw new WarmError(`${url}: HTTP ${res.statusCode} ${errorText(body)}`);
  return { body };
}

async function fetchBlob(job: BlobJob, options: WarmOptions, progress: (bytes: number) => void): Promise<{ cached: boolean; bytes: number }> {
  // HEAD first: a cached blob needs no download, an uncached one costs wharf an upstream HEAD.
  const head = await request(job.path, { method: 'HEAD', dispatcher: options.dispatcher });
  await head.body.dump();
  if (head.statusCode === 200 && head.headers['x-wharf-cache'] === 'hit') return { cached: true, bytes: job.size };
  const res = await request(job.path, { dispatcher: options.dispatcher });
  if (res.statusCode !== 200) {
    const body = Buffer.from(await res.body.arrayBuffer());
    throw new WarmError(`${job.digest}: HTTP ${res.statusCode} ${errorText(body)}`);
  }
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += (chunk as Buffer).length;
    progress((chunk as Buffer).length);
  }
  // wharf cuts the stream of a blob that fails verification: a short body is a failure.
  if (bytes !== job.size) throw new WarmError(`${job.digest}: got ${bytes} of ${job.size} bytes`);
  return { cached: false, bytes };
}

function descriptors(body: Buffer): Array<{ digest: string; size: number }> {
  const doc = JSON.parse(body.toString('utf8')) as { config?: { digest: string; size: number }; layers?: Array<{ digest: string; size: number }> };
  return [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])].map((d) => ({ digest: d.digest, size: d.size }));
}

function wanted(platform: { os?: string; architecture?: string; variant?: string } | undefined, platforms: readonly Platform[]): boolean {
  if (platforms.length === 0) return true;
  return platforms.some((p) => platform?.os === p.os && platform.architecture === p.architecture && (p.variant === undefined || platform.variant === p.variant));
}

export function parsePlatform(text: string): Platform {
  const [os, architecture, variant] = text.split('/');
  if (!os || !architecture) throw new WarmError(`invalid platform "${text}": expected os/arch[/variant], e.g. linux/amd64`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

function platformText(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

function errorText(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code: string; message: string }> };
    const e = parsed.errors?.[0];
    return e ? `${e.code}: ${e.message}` : '';
  } catch {
    return '';
  }
}
