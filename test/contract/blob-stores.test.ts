// Runs the BlobStore contract against the disk store, in a temp dir, with and without fsync.
import { join } from 'node:path';
import { createDiskBlobStore, DiskBlobWriter } from '../../src/cache/disk-blob-store.ts';
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
