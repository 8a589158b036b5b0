// The project's root directory, for files that ship beside the code (package.json, config/,
// native/build/). This module sits one level below the root both as src/project-root.ts and,
// bundled, inside a dist/*.js chunk, so the one relative step is right in both.
const PROJECT_ROOT = new URL('../', import.meta.url);

/** A file of the project, by its path from the root. */
export function projectFile(relative: string): URL {
  return new URL(relative, PROJECT_ROOT);
}
