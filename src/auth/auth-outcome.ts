// The outcome of authenticating or authorising one request, for the composition root to count.
// Only enums: a user or repository name as a metric label would be unbounded cardinality and
// would put names into the metrics.
import type { IdentityKind } from './identity.ts';

export type AuthOutcome = 'ok' | 'denied' | 'bad-credentials' | 'expired';

/**
 * Called once per authentication ('ok', 'bad-credentials', 'expired', from the authenticator)
 * and once per refusal by the access rules ('denied'). For a failed credential, `kind` is the
 * kind the credential claimed to be (Basic: 'user'; a bearer that is not a JWT: 'machine'; a wharf
 * token: the kind it names; an unknown scheme: 'anonymous').
 */
export type AuthOutcomeListener = (result: AuthOutcome, kind: IdentityKind) => void;
