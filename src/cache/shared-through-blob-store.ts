// The blob store CLI commands use when blobs are shared on S3: a blob this machine's disk lacks
// is read from S3 (so `wharf bundle export` on any replica exports what the cluster holds), and
// a blob written (`wharf bundle import`) is published to S3 once verified, so every replica of
// an air-gapped site finds it. Unlike a serving replica, a command fails when S3 does.
import type { BlobInfo, BlobStore, BlobWriter } from './blob-store.ts';
import type { SharedBlobs } from './shared-blobs.ts';

export function sharedThrough(local: BlobStore, shared: SharedBlobs): BlobStore {
  return {
    async stat(digest) {
      return (await local.stat(digest)) ?? (await shared.statOrThrow(digest));
    },
    async createWriter(digest) {
      return new PublishingWriter(await local.createWriter(digest), shared);
    },
    removeTempFiles: (options) => local.removeTempFiles(options),
    ping: async () => {
      await local.ping();
      await shared.ping();
    },
    list: () => local.list(),
    touch: (digest, atMs) => local.touch(digest, atMs),
    remove: (digest) => local.remove(digest),
  };
}

class PublishingWriter implements BlobWriter {
  readonly #inner: BlobWriter;
  readonly #shared: SharedBlobs;

  constructor(inner: BlobWriter, shared: SharedBlobs) {
    this.#inner = inner;
    this.#shared = shared;
  }

  get digest(): string {
    return this.#inner.digest;
  }

  get written(): number {
    return this.#inner.written;
  }

  openReader() {
    return this.#inner.openReader();
  }

  write(chunk: Uint8Array, release?: () => void): Promise<void> {
    return this.#inner.write(chunk, release);
  }

  async commit(onVerified?: () => void): Promise<BlobInfo> {
    const info = await this.#inner.commit(onVerified);
    await this.#shared.publishOrThrow(info);
    return info;
  }

  abort(): Promise<void> {
    return this.#inner.abort();
  }
}
