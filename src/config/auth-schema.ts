// The `auth` block: who is asking (htpasswd users, machine tokens, client certificates, client
// networks), the token service that lets every registry client authenticate the way it already
// does with registries, and the rules that say who may pull which repository. Without it wharf
// is open, as before: anyone who reaches it pulls anything it proxies.
import { z } from 'zod';

const name = z.string().min(1);

/** Who a rule or a role admits: any one of these is enough. */
const subjectsShape = {
  anonymous: z.boolean().optional(),
  users: z.array(name).optional(),
  groups: z.array(name).optional(),
  machines: z.array(name).optional(),
  /** Client certificate subject CNs (TLS with clientCaFile). */
  certificates: z.array(name).optional(),
  /** CIDRs, IPv4 or IPv6: node-level mirrors send no credentials. */
  networks: z.array(name).optional(),
};

export const accessRuleSchema = z.strictObject({
  /** Globs on `<upstream>/<repository>`: `docker.io/library/**`, `ghcr.io/acme/*`. */
  repositories: z.array(name).min(1),
  actions: z.array(name).optional(),
  ...subjectsShape,
});

export const accessRulesSchema = z.array(accessRuleSchema);

const roleSchema = z.strictObject(subjectsShape);

const machineSchema = z.union([
  z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the token\'s SHA-256 as 64 lowercase hex digits'), groups: z.array(name).optional() }),
  z.strictObject({ file: name, groups: z.array(name).optional() }),
]);

export const authSchema = z
  .strictObject({
    /** The service name in the Bearer challenge and the tokens' audience. */
    service: name.default('wharf'),
    /** Where clients fetch tokens. Unset: /token on the address the client used. */
    realm: z.url({ protocol: /^https?$/ }).optional(),
    tokenTtlSeconds: z.number().int().min(30).max(86_400).default(300),
    /** The token signing key (PEM); generated on first start if absent. Unset: <dataDir>/auth/token-signing-key.pem */
    signingKeyFile: name.optional(),
    signingAlgorithm: z.enum(['EdDSA', 'ES256']).default('EdDSA'),
    /** Older signing keys whose tokens are still accepted (rotation). */
    previousKeyFiles: z.array(name).default([]),
    htpasswd: z
      .strictObject({
        path: name,
        /** group -> member users. */
        groups: z.record(name, z.array(name)).default({}),
      })
      .optional(),
    /** Machine bearer tokens, by machine name: the token's SHA-256, or a file holding the token. */
    machines: z.record(name, machineSchema).default({}),
    /** Ordered access rules; the first whose repositories match decides; none matching: denied. */
    rules: accessRulesSchema.optional(),
    /** A YAML file holding the rules list instead, reloaded when it changes. */
    rulesFile: name.optional(),
    /** Who may use the admin API (besides admin.token). */
    admins: roleSchema.default({}),
    /** Who may read /status, /status.json and /metrics (admins may too). */
    observers: roleSchema.default({}),
  })
  .refine((a) => !(a.rules && a.rulesFile), { message: 'set rules or rulesFile, not both', path: ['rules'] })
  .refine((a) => a.rules !== undefined || a.rulesFile !== undefined, { message: 'set rules (or rulesFile): without rules nobody may pull', path: ['rules'] });

/** Per upstream: which repositories may enter the cache at all, whoever asks (deny wins). */
export const proxyFilterSchema = z.strictObject({
  allow: z.array(name).min(1).optional(),
  deny: z.array(name).min(1).optional(),
});

export type AuthConfig = z.output<typeof authSchema>;
export type AccessRuleConfig = z.output<typeof accessRuleSchema>;
export type RoleConfig = z.output<typeof roleSchema>;
