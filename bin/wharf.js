#!/usr/bin/env node
// The `wharf` command. wharf's source is TypeScript run directly by Node 24 (type stripping),
// so an older Node gets a clear message instead of a syntax error.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`wharf needs Node.js 24 or later (this is ${process.version}); run it through npm (npm start / npx wharf), which uses the project's Node 24.\n`);
  process.exit(1);
}
await import('../src/main.ts');
