// Image references as users write them: [registry/]repository[:tag][@digest]. A first segment
// with a dot or colon, or "localhost", is a registry; otherwise the registry is docker.io.
import { parseDigest } from './digest.ts';
import { isValidRepositoryName, isValidTag } from './grammar.ts';

export interface ImageReference {
  readonly registry: string;
  /** As written after the registry, e.g. "alpine" or "library/alpine" (library/ is the router's business). */
  readonly repository: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

export class ReferenceError extends Error {}

export function parseImageReference(text: string, defaultRegistry = 'docker.io'): ImageReference {
  let rest = text.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      digest = parseDigest(digest).value;
    } catch {
      throw new ReferenceError(`${text}: invalid digest ${digest}`);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new ReferenceError(`${text}: invalid tag ${tag}`);
  }
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  const hasRegistry = first.includes('.') || first.includes(':') || first === 'localhost';
  const registry = hasRegistry ? first : defaultRegistry;
  const repository = hasRegistry ? rest.slice(slash + 1) : rest;
  if (!isValidRepositoryName(repository)) throw new ReferenceError(`${text}: invalid repository name ${repository}`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, tag, digest };
}
