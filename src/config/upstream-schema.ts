// One upstream registry in the config (upstreams[]): where it is, its credentials, deadlines,
// limits and what of it may be cached. Part of the one schema (schema.ts).
import { z } from 'zod';
import { proxyFilterSchema } from './auth-schema.ts';
import { aadCredentialsSchema, credentialHelperSchema } from './upstream-credentials-schema.ts';

const positiveMs = z.number().int().positive();

// The name clients use for a registry: a host with an optional port (docker.io, ghcr.io, localhost:5000).
const registryName = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/,
    'expected a lowercase registry host such as docker.io or ghcr.io',
  );

const httpUrl = z
  .url({ protocol: /^https?$/, error: 'expected an http(s) URL such as https://registry-1.docker.io' })
  .transform((u) => u.replace(/\/+$/, ''));

/** Per-upstream deadlines: any key left out takes the global `timeouts` value. */
const upstreamTimeoutsSchema = z.strictObject({
  connectMs: positiveMs.optional(),
  headersMs: positiveMs.optional(),
  bodyIdleMs: positiveMs.optional(),
  manifestTotalMs: positiveMs.optional(),
  blobMinBytesPerSecond: z.number().int().min(0).optional(),
  blobRateWindowMs: positiveMs.optional(),
});

/** A host name or IP literal, optionally with a port: where redirects or token realms may point. */
const hostName = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, 'expected a host such as cdn.example.com or 10.0.0.5:8080')
  .transform((h) => h.toLowerCase());

const upstreamLimitsSchema = z.strictObject({
  /** Requests in flight at once (a blob download holds its turn until its body is read). */
  maxConcurrent: z.number().int().min(1).optional(),
  /** Requests started per second, on average (a token bucket). */
  requestsPerSecond: z.number().positive().optional(),
  /** Requests that may start at once after a quiet spell (default: one second's worth). */
  burst: z.number().int().min(1).optional(),
  /**
   * Longest wait in line for a turn; past it the client is told to retry. A revalidation with
   * a cached copy waits at most resilience.staleAfterMs: the copy is then served stale and the
   * revalidation given up, so that it adds no load.
   */
  maxWaitMs: positiveMs.default(30_000),
});

export const upstreamSchema = z
  .strictObject({
    name: registryName,
    url: httpUrl,
    /**
     * Other addresses of the same content (mirrors), tried in order when url gives no answer,
     * an error answer or a 404; the last one's answer stands. Each gets this upstream's credentials.
     */
    fallbackUrls: z.array(httpUrl).max(8).default([]),
    default: z.boolean().default(false),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    passwordFile: z.string().min(1).optional(),
    credentialHelper: credentialHelperSchema.optional(),
    /** Azure Container Registry: an Azure AD access token in a file, exchanged for ACR tokens. */
    aad: aadCredentialsSchema.optional(),
    /** Prefix single-segment repositories with library/ (Docker Hub official images). */
    libraryPrefix: z.boolean().optional(),
    timeouts: upstreamTimeoutsSchema.optional(),
    /**
     * Hosts this upstream's redirects may lead to even on loopback, link-local or private
     * networks (public hosts need no listing).
     */
    redirectHosts: z.array(hostName).default([]),
    /**
     * Token realm hosts that may receive this upstream's credentials besides its own host and
     * hosts of the same registrable domain.
     */
    authRealmHosts: z.array(hostName).default([]),
    /** Which of this upstream's repositories may enter the cache at all (globs; deny wins). */
    repositories: proxyFilterSchema.optional(),
    /** What wharf asks of this upstream at most (upstream-limiter.ts). Unset: no caps. */
    limits: upstreamLimitsSchema.optional(),
    /** After serving an image manifest, fetch its blobs not cached yet in the background. */
    prefetch: z.boolean().default(false),
  })
  .refine((u) => !(u.password && u.passwordFile), {
    message: 'set password or passwordFile, not both',
    path: ['password'],
  })
  .refine((u) => !(u.credentialHelper && (u.username || u.password || u.passwordFile)), {
    message: 'set credentialHelper or username/password/passwordFile, not both',
    path: ['credentialHelper'],
  })
  .refine((u) => !(u.aad && (u.username || u.password || u.passwordFile || u.credentialHelper)), {
    message: 'set aad or username/password/passwordFile/credentialHelper, not both',
    path: ['aad'],
  })
  .refine((u) => !((u.password || u.passwordFile) && !u.username), {
    message: 'a password needs a username',
    path: ['username'],
  });

