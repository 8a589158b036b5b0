// Removing what fills left in a store's local temp directory (crash leftovers): entries idle for
// olderThanMs, or all; dryRun counts without removing. Shared by the disk and the S3 store, whose
// spools of running fills live on local disk too.
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export async function removeIdleEntries(dir: string, options: { readonly olderThanMs?: number; readonly dryRun?: boolean }): Promise<number> {
  const cutoff = Date.now() - (options.olderThanMs ?? 0);
  let removed = 0;
  const names = await readdir(dir).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  });
  for (const name of names) {
    const path = join(dir, name);
    if (options.olderThanMs !== undefined) {
      const st = await stat(path).catch(() => undefined);
      if (!st || st.mtimeMs > cutoff) continue;
    }
    if (!options.dryRun) await rm(path, { recursive: true, force: true });
    removed++;
  }
  return removed;
}
