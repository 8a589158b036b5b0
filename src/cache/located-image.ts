// An image as the cache keys it: the upstream that serves its registry and the repository as
// that upstream names it, with the reference (tag or digest) asked for.
import type { RepoKey } from './manifest-store.ts';
import type { ImageReference } from '../oci/reference.ts';

export interface LocatedImage {
  readonly repo: RepoKey;
  readonly reference: ImageReference;
}
