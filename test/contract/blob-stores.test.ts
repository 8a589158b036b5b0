// Runs the BlobStore contract against the disk store, in a temp dir, with and without fsync, and
// against the S3 store on a real S3-compatible server (s3rver, started for this file; one key
// prefix per test keeps tests apart on it).
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createDiskBlobStore, DiskBlobWriter } from '../../src/cache/disk-blob-store.ts';
import { createS3Client } from '../../src/cache/s3-client.ts';
import { createS3BlobStore } from '../../src/cache/s3-blob-store.ts';
import { startS3Server, type S3Server } from '../support/s3-server.ts';
import { makeTempDir } from '../support/temp-dir.ts';
import { blobStoreContract } from './blob-store.contract.ts';

for (const fsync of [true, false]) {
  blobStoreContract(`disk (fsync ${fsync ? 'on' : 'off'})`, async () => {
    const dir = await makeTempDir('wharf-blobs-');
    return {
      store: createDiskBlobStore(dir.path, { fsync }),
      files: {
        pathOf: (digest) => {
          const [algorithm, hex] = digest.split(':') as [string, string];
          return join(dir.path, 'blobs', algorithm, hex.slice(0, 2), hex);
        },
        tempPathOf: (writer) => (writer as DiskBlobWriter).tempPath,
      },
      cleanup: dir.cleanup,
    };
  });
}

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(async () => {
  await s3?.stop();
});

blobStoreContract('s3 (s3rver)', async () => {
  const spool = await makeTempDir('wharf-s3-spool-');
  const client = createS3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  return {
    store: createS3BlobStore({ client, bucket: s3.bucket, prefix: `${randomUUID()}/`, spoolDir: spool.path }),
    cleanup: async () => {
      client.destroy();
      await spool.cleanup();
    },
  };
});
