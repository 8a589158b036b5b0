// The Hono environment of every wharf route: Node bindings, plus what the registry handler
// learns about a request (its kind, upstream and repository) for the access log and metrics.
import type { HttpBindings } from '@hono/node-server';
import type { RequestKind } from '../metrics/metrics.ts';
import type { Identity } from '../auth/identity.ts';
import type { GateRequest } from '../auth/access-gate.ts';

export interface WharfEnv {
  Bindings: HttpBindings;
  Variables: {
    requestKind: RequestKind;
    upstreamName: string;
    repository: string;
    /** Handed to the main thread, which observes it itself. */
    forwarded: boolean;
    /** Who asked, once the access gate decided it (for the access log; never a secret). */
    identity: Identity;
    /** What the gate read of the request (credentials, client, host), for the routes' checks. */
    gateRequest: GateRequest;
  };
}
