// Referrers: passed through to the upstream, which alone knows every artifact that refers to a
// manifest. Its 404 (no referrers API) is passed on so clients fall back to the sha256-<hex> tag.
import { RegistryError } from '../errors.ts';
import { askUpstream, type UpstreamHandle } from './upstream-handle.ts';
import { headerValue, upstreamAnswerError } from './upstream-answer.ts';
import { readUpstreamBody } from './read-body.ts';
import { MediaType } from '../oci/media-types.ts';

const MAX_REFERRERS_BYTES = 4 * 1024 * 1024;

export interface ReferrersResult {
  readonly body: Buffer;
  readonly contentType: string;
  readonly filtersApplied: string | undefined;
}

export class ReferrersUnsupportedError extends RegistryError {
  constructor(upstream: string) {
    super('UNSUPPORTED', 404, `upstream ${upstream} does not support the referrers API; use the referrers tag schema`, { upstream });
  }
}

export async function fetchReferrers(upstream: UpstreamHandle, repository: string, digest: string, artifactType: string | undefined): Promise<ReferrersResult> {
  // Offline there is no referrers API; clients fall back to the (maybe cached) sha256-<hex> tag.
  if (upstream.offline) throw new ReferrersUnsupportedError(upstream.name);
  const query = artifactType ? `?${new URLSearchParams({ artifactType })}` : '';
  const res = await askUpstream(upstream, {
    method: 'GET',
    path: `/v2/${repository}/referrers/${digest}${query}`,
    repository,
    headers: { accept: MediaType.ociIndex },
  });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw upstreamAnswerError(upstream.name, res, () => new ReferrersUnsupportedError(upstream.name));
  }
  const body = await readUpstreamBody(upstream.name, res.body, MAX_REFERRERS_BYTES);
  return {
    body,
    contentType: headerValue(res.headers['content-type']) ?? MediaType.ociIndex,
    filtersApplied: headerValue(res.headers['oci-filters-applied']),
  };
}
