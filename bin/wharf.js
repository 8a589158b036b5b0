#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1 --heap-growing-percent=50 --v8-pool-size=1
// The `wharf` command. It runs the JavaScript that `npm run build` (run by `npm ci`) puts in
// dist/; without a build it runs the TypeScript sources directly (Node 24 type stripping), which
// works the same but costs ~30 MB more memory. An older Node gets a clear message instead of a
// syntax error. The young-generation cap in the first line (repeated in the Dockerfile, which
// starts Node itself) keeps RSS under load near the idle figure; a full collection once the old
// generation grew by half (V8 otherwise lets a small heap grow up to fourfold first: ~50 MB more
// RSS over the first minute of manifest load, then flat); one V8 background thread
// instead of four keeps GC and compile jobs from all holding memory at once (peaks 5-9 MB
// lower after a pull, at no cost measured in throughput); and two malloc arenas instead of
// glibc's one per thread keep it ~20 MB lower with threads: 2; see docs/benchmarks.md.
import { existsSync } from 'node:fs';

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`wharf needs Node.js 24 or later (this is ${process.version}); run it through npm (npm start / npx wharf), which uses the project's Node 24.\n`);
  process.exit(1);
}
const built = new URL('../dist/main.js', import.meta.url);
await import(existsSync(built) ? built.href : '../src/main.ts');
