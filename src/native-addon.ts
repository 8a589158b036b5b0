// Loads one of wharf's native addons (native/*.c), which `npm run build:native` builds during
// npm ci. Absent (no compiler where wharf was installed, another OS), the caller does without.
import { createRequire } from 'node:module';
import { projectFile } from './project-root.ts';

/** Where npm run build:native puts the addon. */
export function nativeAddonPath(name: string): string {
  return projectFile(`native/build/Release/${name}.node`).pathname;
}

/** The addon, or the reason it cannot be used. */
export function loadNativeAddon<Addon>(name: string): Addon | Error {
  if (process.platform !== 'linux') return new Error(`wharf's ${name} addon is used on Linux only, not ${process.platform}`);
  try {
    return createRequire(import.meta.url)(nativeAddonPath(name)) as Addon;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}
