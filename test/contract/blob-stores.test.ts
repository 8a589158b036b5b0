// Runs the BlobStore contract against the disk store, in a temp dir, with and without fsync and
// with its hashing on either hash thread (the Worker, and the native one, which writes too), and
// against the S3 store on two real S3-compatible servers, one of each started for this file (one
// key prefix per test keeps tests apart on them): radosgw, the faithful one (signatures checked,
// a conditional PUT of an existing key really refused with 412), and s3rver, the lenient one (a
// server that lets more through must not make wharf wrong either). test/support/s3-server.ts.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createDiskBlobStore, DiskBlobWriter } from '../../src/cache/disk-blob-store.ts';
import { HashOffload, type HashThread } from '../../src/cache/hash-offload.ts';
import { loadNativeHashThread } from '../../src/cache/native-hash-thread.ts';
import { createS3Client } from '../../src/cache/s3-client.ts';
import { createS3BlobStore } from '../../src/cache/s3-blob-store.ts';
import { startS3Server, type S3Server, type S3ServerKind } from '../support/s3-server.ts';
import { makeTempDir } from '../support/temp-dir.ts';
import { blobStoreContract } from './blob-store.contract.ts';

function nativeHashThread(): HashThread {
  const thread = loadNativeHashThread();
  if (thread instanceof Error) throw thread;
  return thread;
}

const diskSetups = [
  { fsync: true, hashThread: undefined },
  { fsync: false, hashThread: undefined },
  { fsync: true, hashThread: 'worker' },
  { fsync: true, hashThread: 'native' },
] as const;
for (const { fsync, hashThread } of diskSetups) {
  blobStoreContract(`disk (fsync ${fsync ? 'on' : 'off'}${hashThread ? `, ${hashThread} hash thread` : ''})`, async () => {
    const dir = await makeTempDir('wharf-blobs-');
    const hashOffload = hashThread === 'worker' ? new HashOffload() : hashThread === 'native' ? nativeHashThread() : undefined;
    return {
      store: createDiskBlobStore(dir.path, { fsync, hashOffload }),
      files: {
        pathOf: (digest) => {
          const [algorithm, hex] = digest.split(':') as [string, string];
          return join(dir.path, 'blobs', algorithm, hex.slice(0, 2), hex);
        },
        tempPathOf: (writer) => (writer as DiskBlobWriter).tempPath,
      },
      cleanup: async () => {
        await hashOffload?.close();
        await dir.cleanup();
      },
    };
  });
}

const servers: S3ServerKind[] = ['radosgw', 's3rver'];
const running = new Map<S3ServerKind, S3Server>();
beforeAll(async () => {
  // One after the other: radosgw takes ~15 s on its own, and two cold starts at once on a small
  // machine only slow each other down.
  for (const server of servers) running.set(server, await startS3Server({ server }));
}, 150_000);
afterAll(async () => {
  await Promise.all([...running.values()].map((s3) => s3.stop()));
});

for (const server of servers) {
  blobStoreContract(`s3 (${server})`, async () => {
    const s3 = running.get(server);
    if (!s3) throw new Error(`${server} did not start (see beforeAll)`);
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
}
