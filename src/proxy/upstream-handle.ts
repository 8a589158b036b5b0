// A configured upstream as the services see it: its name, its client and its naming rules.
import type { UpstreamClient } from './upstream-client.ts';
import type { RoutableUpstream } from './upstream-router.ts';
import { UpstreamUnavailableError } from '../errors.ts';
import { UpstreamFailure } from './upstream-failure.ts';

export interface UpstreamHandle extends RoutableUpstream {
  readonly client: UpstreamClient;
}

type UpstreamRequest = Parameters<UpstreamClient['request']>[0];
type UpstreamResponse = Awaited<ReturnType<UpstreamClient['request']>>;

/** Asks the upstream; a failure to get any HTTP answer becomes 503 UNAVAILABLE. */
export async function askUpstream(upstream: UpstreamHandle, req: UpstreamRequest): Promise<UpstreamResponse> {
  try {
    return await upstream.client.request(req);
  } catch (err) {
    if (err instanceof UpstreamFailure) throw new UpstreamUnavailableError(upstream.name, err.reason);
    throw err;
  }
}
