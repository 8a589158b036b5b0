// Dynamic credentials of an upstream: a Docker credential helper (`docker-credential-<name> get`,
// the exec protocol every docker client speaks) run for the upstream's server URL, its answer
// kept for lifetimeSeconds and run again after, or at once after the upstream rejects it.
import { z } from 'zod';

export const credentialHelperSchema = z.strictObject({
  /**
   * The helper: a name (`ecr-login` runs docker-credential-ecr-login from PATH), a command on
   * PATH (`docker-credential-ecr-login`) or a path to one.
   */
  command: z.string().min(1),
  /** How long an answer is used before the helper is asked again (ECR tokens live 12 h). */
  lifetimeSeconds: z.number().int().min(1).default(3600),
  /** What the helper is told on stdin; default the upstream url's host (host:port). */
  serverUrl: z.string().min(1).optional(),
});

export type CredentialHelperConfig = z.infer<typeof credentialHelperSchema>;
