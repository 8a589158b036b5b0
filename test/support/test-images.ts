// Real, valid, deterministic container images built in memory: ustar layers gzip-compressed,
// a config whose diff_ids match, and OCI or Docker v2 manifests and indexes. skopeo, podman
// and containerd verify all of it, so a pull through wharf proves the bytes are unchanged.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export interface Blob {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
}

export interface TestImage {
  readonly manifest: { readonly digest: string; readonly mediaType: string; readonly body: Buffer };
  readonly config: { readonly digest: string; readonly mediaType: string; readonly body: Buffer };
  readonly layers: readonly Blob[];
  readonly platform: { readonly architecture: string; readonly os: string };
}

export interface TestIndex {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
}

const MEDIA = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
    index: 'application/vnd.oci.image.index.v1+json',
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
  },
} as const;

// Fixed timestamps keep every digest stable from run to run.
const MTIME = 1_700_000_000;
const CREATED = new Date(MTIME * 1000).toISOString();

export function sha256(body: Buffer): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

export function makeImage(opts: {
  name: string;
  files: Record<string, string>;
  arch?: string;
  os?: string;
  mediaType?: 'oci' | 'docker';
  extraLayerBytes?: number;
}): TestImage {
  const kind = opts.mediaType ?? 'oci';
  const platform = { architecture: opts.arch ?? 'amd64', os: opts.os ?? 'linux' };
  const tars = [tarOf(Object.entries(opts.files).map(([path, text]) => ({ path, body: Buffer.from(text) })))];
  if (opts.extraLayerBytes) {
    tars.push(tarOf([{ path: `data/${opts.name}.bin`, body: pseudoRandomBytes(`${opts.name}/${platform.architecture}`, opts.extraLayerBytes) }]));
  }
  const layers = tars.map((tar) => {
    const body = gzipSync(tar, { level: 6 });
    return { digest: sha256(body), mediaType: MEDIA[kind].layer, body, diffId: sha256(tar) };
  });
  const configBody = Buffer.from(
    JSON.stringify({
      created: CREATED,
      ...platform,
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: { 'test.image': opts.name } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created: CREATED, created_by: `wharf test layer ${i}` })),
    }),
  );
  const config = { digest: sha256(configBody), mediaType: MEDIA[kind].config, body: configBody };
  const manifestBody = Buffer.from(
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType: MEDIA[kind].manifest,
        config: { mediaType: config.mediaType, digest: config.digest, size: configBody.length },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.body.length })),
      },
      null,
      // Registries must keep the exact bytes: indentation makes a re-serialising proxy visible.
      3,
    ),
  );
  return {
    manifest: { digest: sha256(manifestBody), mediaType: MEDIA[kind].manifest, body: manifestBody },
    config,
    layers: layers.map(({ digest, mediaType, body }) => ({ digest, mediaType, body })),
    platform,
  };
}

export function makeIndex(images: readonly TestImage[], kind: 'oci' | 'docker'): TestIndex {
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA[kind].index,
      manifests: images.map((img) => ({
        mediaType: img.manifest.mediaType,
        digest: img.manifest.digest,
        size: img.manifest.body.length,
        platform: img.platform,
      })),
    }),
  );
  return { digest: sha256(body), mediaType: MEDIA[kind].index, body };
}

/** Incompressible bytes, the same for the same seed: layers that behave like real binaries. */
export function pseudoRandomBytes(seed: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let block = createHash('sha256').update(seed).digest();
  for (let offset = 0; offset < size; offset += block.length) {
    block.copy(out, offset, 0, Math.min(block.length, size - offset));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

interface TarEntry {
  readonly path: string;
  readonly body: Buffer;
}

/** A ustar archive: parent directories first, then each file, then two zero blocks. */
function tarOf(files: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  for (const file of files) {
    const segments = file.path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = `${segments.slice(0, i).join('/')}/`;
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      parts.push(tarHeader(dir, 0, '5', 0o755));
    }
    parts.push(tarHeader(file.path, file.body.length, '0', 0o644), file.body, Buffer.alloc((512 - (file.body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function tarHeader(path: string, size: number, type: '0' | '5', mode: number): Buffer {
  if (Buffer.byteLength(path) > 100) throw new Error(`tar path too long for a test image: ${path}`);
  const header = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number) => header.write(text, offset, length, 'ascii');
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, '0') + '\0';
  put(path, 0, 100);
  put(octal(mode, 8), 100, 8);
  put(octal(0, 8), 108, 8); // uid
  put(octal(0, 8), 116, 8); // gid
  put(octal(size, 12), 124, 12);
  put(octal(MTIME, 12), 136, 12);
  put('        ', 148, 8); // checksum counts as spaces while it is computed
  put(type, 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return header;
}
