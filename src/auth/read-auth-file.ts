// Reading the files auth is configured with (htpasswd, keys, machine tokens). A failure is the
// caller's error class, saying the errno code: never the file's content, which is secret.
import { readFile } from 'node:fs/promises';

export async function readAuthFile(path: string, fail: (why: string, cause: unknown) => Error): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw fail(`cannot read: ${errnoCode(err)}`, err);
  }
}

export function errnoCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}
