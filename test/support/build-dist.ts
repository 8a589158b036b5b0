// Vitest global setup: builds dist/ before any test runs, so tests that start `bin/wharf.js`
// as its own process run the JavaScript built from the sources under test, never a stale build.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export default function buildDist(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
}
