// An image reference (alpine:3.20, ghcr.io/owner/app@sha256:...) as the cache's key: the
// upstream that serves its registry and the repository as that upstream names it.
import type { RepoKey } from './manifest-store.ts';
import type { RoutableUpstream, UpstreamRouter } from '../proxy/upstream-router.ts';
import { parseImageReference, ReferenceError, type ImageReference } from '../oci/reference.ts';

export interface LocatedImage {
  readonly repo: RepoKey;
  readonly reference: ImageReference;
}

export function locateImage(router: UpstreamRouter<RoutableUpstream>, text: string): LocatedImage {
  const reference = parseImageReference(text);
  if (!router.get(reference.registry)) throw new ReferenceError(`${text}: no upstream named ${reference.registry} is configured`);
  const route = router.route(`${reference.registry}/${reference.repository}`, undefined);
  return { repo: { upstream: route.upstream.name, repository: route.repository }, reference };
}
