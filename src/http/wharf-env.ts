// The Hono environment of every wharf route: Node bindings, plus what the registry handler
// learns about a request (its kind, upstream and repository) for the access log and metrics.
import type { HttpBindings } from '@hono/node-server';
import type { RequestKind } from '../metrics/metrics.ts';

export interface WharfEnv {
  Bindings: HttpBindings;
  Variables: {
    requestKind: RequestKind;
    upstreamName: string;
    repository: string;
    /** Handed to the main thread, which observes it itself. */
    forwarded: boolean;
  };
}
