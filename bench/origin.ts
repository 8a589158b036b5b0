// The benchmark's origin: the reference registry with synthetic images pushed by streaming
// (blobs of hundreds of MiB never sit in memory). Images are OCI manifests over random layers:
// clients copy them by digest, which is what a cache is measured on.
import { request } from 'undici';
import { MediaType } from '../src/oci/media-types.ts';
import { digestOf } from '../src/oci/digest.ts';
import { startUpstreamRegistry, type UpstreamRegistry } from '../test/support/upstream-registry.ts';
import { syntheticBlob, type SyntheticBlob } from './synthetic.ts';

export interface BenchImage {
  readonly repo: string;
  readonly tag: string;
  readonly manifestDigest: string;
  readonly blobs: readonly SyntheticBlob[];
  readonly bytes: number;
}

export interface Origin {
  readonly registry: UpstreamRegistry;
  image(repo: string, tag: string, layerSizes: readonly number[]): Promise<BenchImage>;
  blob(repo: string, name: string, size: number): Promise<SyntheticBlob>;
  stop(): Promise<void>;
}

export async function startOrigin(): Promise<Origin> {
  const registry = await startUpstreamRegistry();
  const blob = async (repo: string, name: string, size: number) => {
    const b = await syntheticBlob(name, size);
    await pushBlob(registry.url, repo, b.digest, b.size, b.stream());
    return b;
  };
  return {
    registry,
    blob,
    async image(repo, tag, layerSizes) {
      const layers = [];
      for (const [i, size] of layerSizes.entries()) layers.push(await blob(repo, `${repo}:${tag}:layer${i}`, size));
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: {} }));
      const configDigest = digestOf(config);
      await pushBlob(registry.url, repo, configDigest, config.length, config);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
          layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
        }),
      );
      const res = await request(`${registry.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': MediaType.ociManifest }, body: manifest });
      await res.body.dump();
      if (res.statusCode !== 201) throw new Error(`push ${repo}:${tag}: HTTP ${res.statusCode}`);
      return { repo, tag, manifestDigest: digestOf(manifest), blobs: layers, bytes: layers.reduce((s, l) => s + l.size, 0) + config.length + manifest.length };
    },
    stop: () => registry.stop(),
  };
}

async function pushBlob(base: string, repo: string, digest: string, size: number, body: Buffer | NodeJS.ReadableStream): Promise<void> {
  const head = await request(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  await head.body.dump();
  if (head.statusCode === 200) return;
  const start = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.body.dump();
  const location = new URL(String(start.headers.location), base);
  location.searchParams.set('digest', digest);
  const put = await request(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body: body as Buffer });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`upload ${digest}: HTTP ${put.statusCode}`);
}
