// Where a Worker's entry module is, beside the module that starts it. From source, both are .ts
// files in one folder; built, both are .js in dist/ (scripts/build-dist.ts bundles every entry to
// dist/ beside the shared chunks that start them).
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The entry `name` (no extension) beside the module at `starterUrl` (its import.meta.url), with that module's extension. */
export function threadEntry(name: string, starterUrl: string): URL {
  return new URL(`./${name}${extname(fileURLToPath(starterUrl))}`, starterUrl);
}
