// Certificate rotation without a restart: watches the directories of the TLS files (renewal
// tools and Kubernetes secret mounts replace files by rename, or swap a symlink beside them, so
// the files' own watches would go stale), and after a burst of changes settles reads and checks
// the files again. A set that differs and is good goes to onChange; a bad one is logged and the
// running certificate kept (a renewal writing cert and key one after the other passes through
// such a state and settles with its last write).
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { readTlsFiles, TlsFileError, type TlsFiles, type TlsMaterial } from './tls-files.ts';

const SETTLE_MS = 250;

export class TlsReloader {
  readonly #files: TlsFiles;
  readonly #logger: Logger;
  readonly #onChange: (material: TlsMaterial) => void;
  readonly #watchers: FSWatcher[] = [];
  #current: TlsMaterial;
  #timer: NodeJS.Timeout | undefined;
  #reloads: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(files: TlsFiles, current: TlsMaterial, onChange: (material: TlsMaterial) => void, logger: Logger) {
    this.#files = files;
    this.#current = current;
    this.#onChange = onChange;
    this.#logger = logger;
    const dirs = new Set([files.certFile, files.keyFile, files.clientCaFile].filter((f) => f !== undefined).map((f) => dirname(f)));
    for (const dir of dirs) this.#watch(dir);
  }

  /** Resolves when every change seen so far has been dealt with (for tests and shutdown). */
  settled(): Promise<void> {
    return this.#reloads;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const w of this.#watchers) w.close();
  }

  #watch(dir: string): void {
    try {
      const watcher = watch(dir, { persistent: false }, () => this.#changed());
      watcher.on('error', (err) => {
        this.#logger.warn({ dir, err: String(err) }, 'stopped watching a TLS directory; a certificate change there needs a restart');
        watcher.close();
      });
      this.#watchers.push(watcher);
    } catch (err) {
      this.#logger.warn({ dir, err: String(err) }, 'cannot watch a TLS directory; a certificate change there needs a restart');
    }
  }

  #changed(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#reloads = this.#reloads.then(() => this.#reload());
    }, SETTLE_MS);
    this.#timer.unref();
  }

  async #reload(): Promise<void> {
    if (this.#closed) return;
    let material: TlsMaterial;
    try {
      material = await readTlsFiles(this.#files);
    } catch (err) {
      const problems = err instanceof TlsFileError ? err.problems : [String(err)];
      this.#logger.error({ problems, serving: this.#current.summary.fingerprint256 }, 'TLS files changed but cannot be used; serving the previous certificate');
      return;
    }
    if (material.version === this.#current.version || this.#closed) return;
    this.#current = material;
    this.#onChange(material);
    const { summary } = material;
    if (summary.expired) this.#logger.warn({ tls: summary }, 'TLS certificate reloaded, but it has expired');
    else this.#logger.info({ tls: summary }, 'TLS certificate reloaded');
  }
}
