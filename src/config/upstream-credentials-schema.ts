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

/**
 * Azure Container Registry with an Azure AD (Entra ID) identity: wharf exchanges the access
 * token at the registry's POST /oauth2/exchange for an ACR refresh token, and that for access
 * tokens per repository (Azure/acr docs/AAD-OAuth.md).
 */
export const aadCredentialsSchema = z.strictObject({
  /**
   * A file holding the AAD access token alone (as `az account get-access-token --query
   * accessToken -o tsv` prints it), rewritten before it expires by a sidecar or a cron job:
   * read again whenever it changes.
   */
  accessTokenFile: z.string().min(1),
  /** The AAD tenant (directory) id sent with the exchange; unset: none is sent. */
  tenant: z.string().min(1).optional(),
});

export type AadCredentialsConfig = z.infer<typeof aadCredentialsSchema>;
