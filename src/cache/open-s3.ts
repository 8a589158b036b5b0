// The shared blob store on S3 (blobs.s3) with its clients, metrics and presigner: loaded by
// open-stores.ts only when the config names a bucket, so a wharf without S3 never loads the SDK.
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { createS3Client } from './s3-client.ts';
import { createS3BlobStore } from './s3-blob-store.ts';
import { SharedBlobs } from './shared-blobs.ts';
import { observeS3Requests } from './s3-metrics.ts';
import { createPresigner } from './s3-presigner.ts';

export interface OpenedSharedBlobs {
  readonly shared: SharedBlobs;
  close(): void;
}

type S3Config = NonNullable<Config['blobs']['s3']>;

export async function openS3SharedBlobs(config: Config, s3: S3Config, logger: Logger, metrics: Metrics): Promise<OpenedSharedBlobs> {
  const credentials = await s3Credentials(s3);
  const clientFor = (endpoint: string | undefined) =>
    createS3Client({ region: s3.region, forcePathStyle: s3.forcePathStyle, ...(endpoint !== undefined && { endpoint }), ...credentials });
  const client = clientFor(s3.endpoint);
  observeS3Requests(client, metrics);
  // Presigning makes no request: a client of its own only names the endpoint clients reach.
  const redirect = s3.redirect;
  const presignClient = redirect.enabled ? (redirect.publicEndpoint === undefined ? client : clientFor(redirect.publicEndpoint)) : undefined;
  const presign = presignClient && createPresigner({ client: presignClient, bucket: s3.bucket, prefix: s3.prefix, ttlSeconds: redirect.ttlSeconds });
  const store = createS3BlobStore({
    client,
    bucket: s3.bucket,
    prefix: s3.prefix,
    spoolDir: join(config.dataDir, 's3-spool'),
    partSize: s3.partSize,
    queueSize: s3.queueSize,
    requestTimeoutMs: s3.requestTimeoutMs,
  });
  const shared = new SharedBlobs({ store, logger: logger.child({ component: 's3' }), ...(presign && { presign }) });
  return {
    shared,
    close: () => {
      client.destroy();
      presignClient?.destroy();
    },
  };
}

/** Keys from the configured files; none: the SDK's chain (AWS_* env, shared files, instance or pod role). */
async function s3Credentials(s3: S3Config): Promise<{ credentials?: { accessKeyId: string; secretAccessKey: string } }> {
  if (s3.accessKeyIdFile === undefined || s3.secretAccessKeyFile === undefined) return {};
  const read = async (file: string, key: string) => {
    try {
      const value = (await readFile(file, 'utf8')).trim();
      if (value === '') throw new Error('is empty');
      return value;
    } catch (err) {
      throw new Error(`blobs.s3.${key} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return { credentials: { accessKeyId: await read(s3.accessKeyIdFile, 'accessKeyIdFile'), secretAccessKey: await read(s3.secretAccessKeyFile, 'secretAccessKeyFile') } };
}
