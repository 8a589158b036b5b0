// The rule for anything wharf may serve stale (tags, tag lists): with a cached copy, a client
// waits for the upstream only while it answers promptly. An outage (no answer, 5xx, 429) or a
// revalidation running longer than the budget means the cached copy is served instead; the
// revalidation goes on in the background and updates the cache if it succeeds.
import { UpstreamRateLimitedError, UpstreamUnavailableError } from '../errors.ts';
import type { Flight } from './single-flight.ts';

export type UpstreamOutcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly why: string };

const DEADLINE = Symbol('deadline');

/** The upstream's answer, or why the cached copy should be served instead. Other errors throw. */
export async function upstreamOrFallback<T>(flight: Flight<T>, budgetMs: number): Promise<UpstreamOutcome<T>> {
  const remaining = Math.max(0, flight.startedAt + budgetMs - Date.now());
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof DEADLINE>((resolve) => {
    timer = setTimeout(() => resolve(DEADLINE), remaining);
  });
  try {
    const winner = await Promise.race([flight.result, deadline]);
    if (winner === DEADLINE) return { ok: false, why: `no upstream answer within ${budgetMs} ms` };
    return { ok: true, value: winner };
  } catch (err) {
    if (isOutageError(err)) return { ok: false, why: err.message };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The upstream cannot answer now: a cached copy may stand in. */
export function isOutageError(err: unknown): err is UpstreamUnavailableError | UpstreamRateLimitedError {
  return err instanceof UpstreamUnavailableError || err instanceof UpstreamRateLimitedError;
}
