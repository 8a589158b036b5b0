// An image reference (alpine:3.20, ghcr.io/owner/app@sha256:...) located by the configured
// upstreams: the cache's key for it (the router's naming rules, e.g. Docker Hub's library/).
import type { LocatedImage } from '../cache/located-image.ts';
import type { ConfiguredUpstream, UpstreamRouter } from './upstream-router.ts';
import { parseImageReference, ReferenceError } from '../oci/reference.ts';

export function locateImage(router: UpstreamRouter<ConfiguredUpstream>, text: string): LocatedImage {
  const reference = parseImageReference(text);
  if (!router.get(reference.registry)) throw new ReferenceError(`${text}: no upstream named ${reference.registry} is configured`);
  const route = router.route(`${reference.registry}/${reference.repository}`, undefined);
  return { repo: { upstream: route.upstream.name, repository: route.repository }, reference };
}
