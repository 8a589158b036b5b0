// A secret kept in a file that something else rewrites in place (a mounted Kubernetes secret, a
// workload-identity sidecar or a cron job refreshing a token): read again whenever its inode,
// size or mtime differs from the last read, so each use costs one stat and a rotation is seen
// without a restart. While the file is missing or empty (mid-rotation, an atomic swap of a
// secret volume) the last value read stays in use.
import { readFile, stat } from 'node:fs/promises';

export class SecretFile {
  readonly path: string;
  #value: string | undefined;
  #seen: string | undefined;

  /** initial: what the config loader already read (used until the first successful read). */
  constructor(path: string, initial?: string) {
    this.path = path;
    this.#value = initial;
  }

  /** The secret now (trailing newlines stripped: `echo > file` adds one); undefined: never read. */
  async read(): Promise<string | undefined> {
    try {
      const s = await stat(this.path);
      const seen = `${s.ino}:${s.size}:${s.mtimeMs}`;
      if (seen !== this.#seen) {
        const value = (await readFile(this.path, 'utf8')).replace(/[\r\n]+$/, '');
        if (value !== '') {
          this.#value = value;
          this.#seen = seen;
        }
      }
    } catch {
      // Gone for a moment: keep the last one.
    }
    return this.#value;
  }

  /** Read the file again next time even if its stat looks the same (a rewrite within the mtime's granularity). */
  forget(): void {
    this.#seen = undefined;
  }
}
