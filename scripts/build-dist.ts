// `npm run build`: bundles wharf into dist/ with esbuild, one file per entry point (the server and
// the two thread entries) plus the chunks they share, minified. A bundle holds far fewer and
// smaller module sources than the ~740 modules it replaces; V8 keeps every module's source in the
// heap, so a bundled process idles 3-4 MB lower (docs/benchmarks.md, session 15). Names are kept,
// so error types and stack frames still read as in the sources; the source maps beside each
// file map positions back (node --enable-source-maps, at ~12 MB of RSS). Type checking is
// `npm run typecheck`; esbuild only strips the types.
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = `${ROOT}dist`;

rmSync(OUT, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  // Every entry lands at dist/<name>.js: the code that starts a thread finds it beside itself.
  entryPoints: ['src/main.ts', 'src/threads/hit-thread.ts', 'src/cache/hash-thread.ts'],
  entryNames: '[name]',
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  keepNames: true,
  sourcemap: true,
  // Loaded from node_modules at run time, not bundled: native addons (wharf's and bcrypt's);
  // ioredis, whose classes came out of the bundle as no constructors ("r is not a constructor",
  // the scale-out tests); and the AWS SDK, left as it ships. Only a configuration with Redis or
  // S3 loads either, so a plain cache gains nothing from bundling them.
  external: ['*.node', '@node-rs/bcrypt', '@aws-sdk/*', '@smithy/*', 'ioredis'],
  // CommonJS dependencies call require() for Node's modules; ESM output has none of its own.
  banner: { js: "import { createRequire as wharfCreateRequire } from 'node:module'; const require = wharfCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
