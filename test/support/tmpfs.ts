// A small tmpfs of our own (tests run as root, as CI does) to give wharf a disk that fills up
// or turns read-only, the way a real data volume does. Root ignores file permissions, so only
// a read-only mount can make a directory unwritable for it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run.ts';

export interface Tmpfs {
  readonly path: string;
  remount(mode: 'ro' | 'rw'): Promise<void>;
  unmount(): Promise<void>;
}

export async function mountTmpfs(sizeBytes: number): Promise<Tmpfs> {
  const path = await mkdtemp(join(tmpdir(), 'wharf-tmpfs-'));
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', path]);
  return {
    path,
    remount: async (mode) => {
      await run('mount', ['-o', `remount,${mode}`, path]);
    },
    unmount: async () => {
      await run('umount', [path]).catch(() => run('umount', ['-l', path]));
      await rm(path, { recursive: true, force: true });
    },
  };
}
