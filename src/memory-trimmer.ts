// Gives the memory glibc's malloc holds free back to the kernel, every second, through
// wharf's memory addon (native/memory.c says why: V8's compiler zones). Without the addon (not
// built, not Linux, not glibc) RSS keeps those pages until the process ends, as before.
import type { Logger } from 'pino';
import { loadNativeAddon, nativeAddonPath } from './native-addon.ts';

export interface MemoryAddon {
  /** malloc_trim(0): true if pages went back to the kernel. */
  trim(): boolean;
}

export const MEMORY_ADDON_PATH = nativeAddonPath('memory');

/** Every second: a trim costs 0.1-0.5 ms, and the pages it returns come back only as allocations need them. */
export const TRIM_EVERY_MS = 1_000;

export class MemoryTrimmer {
  readonly #timer: NodeJS.Timeout;

  /** Starts trimming at once, on an unref'd timer (it keeps no process alive). */
  constructor(addon: MemoryAddon, everyMs = TRIM_EVERY_MS) {
    this.#timer = setInterval(() => addon.trim(), everyMs);
    this.#timer.unref();
  }

  /** A trimmer if the addon loads, else undefined with a debug line saying why. */
  static start(logger: Logger, everyMs = TRIM_EVERY_MS): MemoryTrimmer | undefined {
    const addon = loadNativeAddon<MemoryAddon>('memory');
    if (addon instanceof Error) {
      logger.debug({ reason: addon.message }, 'memory addon unavailable (npm run build:native builds it): freed malloc memory stays in RSS');
      return undefined;
    }
    return new MemoryTrimmer(addon, everyMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
