// wharf's version, from package.json (read when asked, not at import).
import { readFileSync } from 'node:fs';
import { projectFile } from './project-root.ts';

export function readVersion(): string {
  const pkg = JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
