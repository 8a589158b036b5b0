// A file that is re-read when it changes (htpasswd, the access rules): a change is applied as a
// whole or not at all, so a bad edit keeps the last good state, and reloads never overlap.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { readAuthFile } from './read-auth-file.ts';

export interface WatchedFileOptions {
  readonly path: string;
  /** Debounce: editors and secret updaters write in several steps. Default 100 ms. */
  readonly delayMs?: number;
  /** Takes a changed text; throwing refuses it, and the previous state stays. */
  readonly apply: (text: string) => void;
  /** A read, parse or watch failure (the message says which; never the file's content). */
  readonly onError: (err: Error) => void;
  /** The caller's error for a file that cannot be read or watched. */
  readonly fail: (why: string, cause: unknown) => Error;
}

export class WatchedFile {
  readonly #options: WatchedFileOptions;
  #text: string;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reloading = false;
  #again = false;
  #closed = false;

  /** text: what was read and applied at start. */
  constructor(options: WatchedFileOptions, text: string) {
    this.#options = options;
    this.#text = text;
    // The directory, not the file: editors and Kubernetes secret volumes replace the file (a
    // rename, or a swap of the `..data` symlink), after which a watch on the old inode is deaf.
    const name = basename(options.path);
    try {
      this.#watcher = watch(dirname(options.path), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === name || filename.startsWith('..')) this.#schedule();
      });
      this.#watcher.on('error', (err) => options.onError(options.fail('watching for changes failed; it will not be reloaded', err)));
    } catch (err) {
      options.onError(options.fail('cannot watch for changes; it will not be reloaded', err));
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#reload(), this.#options.delayMs ?? 100);
    this.#timer.unref();
  }

  async #reload(): Promise<void> {
    if (this.#reloading) {
      this.#again = true;
      return;
    }
    this.#reloading = true;
    try {
      do {
        this.#again = false;
        await this.#reloadOnce();
      } while (this.#again && !this.#closed);
    } finally {
      this.#reloading = false;
    }
  }

  async #reloadOnce(): Promise<void> {
    const { path, apply, onError, fail } = this.#options;
    let text: string;
    try {
      text = await readAuthFile(path, fail);
    } catch (err) {
      if (!this.#closed) onError(err as Error);
      return;
    }
    if (this.#closed || text === this.#text) return;
    try {
      apply(text);
      this.#text = text;
    } catch (err) {
      onError(err as Error);
    }
  }
}
