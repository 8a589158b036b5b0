// wharf-s3's shared blob store: a local S3 server (radosgw, Debian's Ceph gateway, by default;
// BENCH_S3=s3rver for the npm one) and the config that puts wharf's blobs on it, plus a probe
// for when a blob has landed there (wharf uploads it once its digest matched).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startS3Server } from '../test/support/s3-server.ts';
import { until } from '../test/support/until.ts';

const PREFIX = 'bench/';
const LANDED_TIMEOUT_MS = 120_000;

export interface BenchS3 {
  /** wharf's `blobs` config key. */
  readonly config: object;
  /** Resolves once the blob is an object on S3. */
  landed(digest: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchS3(dir: string): Promise<BenchS3> {
  const s3 = await startS3Server({ server: process.env.BENCH_S3 === 's3rver' ? 's3rver' : 'radosgw', bucket: 'wharf-bench' });
  const keyId = join(dir, 's3-key-id');
  const secret = join(dir, 's3-secret');
  await writeFile(keyId, s3.accessKeyId);
  await writeFile(secret, s3.secretAccessKey);
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  return {
    config: { s3: { endpoint: s3.endpoint, bucket: s3.bucket, prefix: PREFIX, forcePathStyle: true, accessKeyIdFile: keyId, secretAccessKeyFile: secret } },
    async landed(digest) {
      const [algorithm, hex] = digest.split(':');
      const head = new HeadObjectCommand({ Bucket: s3.bucket, Key: `${PREFIX}blobs/${algorithm}/${hex}` });
      await until(() => client.send(head).then(() => true, () => false), `${digest} on S3`, LANDED_TIMEOUT_MS, 50);
    },
    async stop() {
      client.destroy();
      await s3.stop();
    },
  };
}
