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
    // Read-only is refused while any file on the mount is open for writing: wharf writes some
    // records without the answer waiting (a blob's repository link, repository-links.ts), and on
    // a loaded machine one may still be in flight. Asked again until that write is done.
    remount: async (mode) => {
      const deadline = Date.now() + 5000;
      for (;;) {
        try {
          await run('mount', ['-o', `remount,${mode}`, path]);
          return;
        } catch (err) {
          if (!/busy/.test(String(err)) || Date.now() > deadline) throw err;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    },
    unmount: async () => {
      await run('umount', [path]).catch(() => run('umount', ['-l', path]));
      await rm(path, { recursive: true, force: true });
    },
  };
}
