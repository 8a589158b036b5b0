// Repository name and tag grammar from the distribution spec. Checked at the edge so that bad
// input is a 4xx and never reaches a store or an upstream.
import { NameInvalidError } from '../errors.ts';

const NAME_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const MAX_NAME_LENGTH = 255;

export function isValidRepositoryName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  return name.split('/').every((component) => NAME_COMPONENT.test(component));
}

export function assertRepositoryName(name: string): void {
  if (name.length > MAX_NAME_LENGTH) throw new NameInvalidError(name, `repository name longer than ${MAX_NAME_LENGTH} characters`);
  if (!isValidRepositoryName(name)) throw new NameInvalidError(name);
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}
