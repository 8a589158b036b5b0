// Referrers: passed through to the upstream, which alone knows every artifact that refers to a
// manifest. Its 404 (no referrers API) is passed on so clients fall back to the sha256-<hex> tag.
// What goes to the client must be an OCI index and is labelled as one, whatever the upstream's
// Content-Type said: an upstream cannot serve a page from wharf's origin this way either.
import { ReferrersUnsupportedError, UpstreamProtocolError } from '../errors.ts';
import { checkManifest } from '../oci/manifest-check.ts';
import type { Upstream } from './upstream.ts';
import { headerValue } from './upstream-answer.ts';
import { readUpstreamBody } from './read-body.ts';
import { MediaType } from '../oci/media-types.ts';

const MAX_REFERRERS_BYTES = 4 * 1024 * 1024;

export interface ReferrersResult {
  readonly body: Buffer;
  readonly contentType: string;
  readonly filtersApplied: string | undefined;
}

export async function fetchReferrers(upstream: Upstream, repository: string, digest: string, artifactType: string | undefined): Promise<ReferrersResult> {
  // Offline there is no referrers API; clients fall back to the (maybe cached) sha256-<hex> tag.
  if (upstream.offline) throw new ReferrersUnsupportedError(upstream.name);
  const query = artifactType ? `?${new URLSearchParams({ artifactType })}` : '';
  const res = await upstream.get({
    path: `/v2/${repository}/referrers/${digest}${query}`,
    repository,
    accept: MediaType.ociIndex,
    small: true,
    notFound: () => new ReferrersUnsupportedError(upstream.name),
  });
  const body = await readUpstreamBody(upstream, res.body, MAX_REFERRERS_BYTES);
  const check = checkManifest(headerValue(res.headers['content-type']), body);
  if (!check.ok || check.mediaType !== MediaType.ociIndex) {
    throw new UpstreamProtocolError(upstream.name, `referrers answer is not an OCI index${check.ok ? '' : `: ${check.why}`}`);
  }
  return {
    body,
    contentType: MediaType.ociIndex,
    filtersApplied: headerValue(res.headers['oci-filters-applied']),
  };
}
