// The one configuration schema: every key, its default and its check. Parsed once, then frozen.
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { authSchema } from './auth-schema.ts';
import { blobsSchema, clusterSchema } from './scale-out-schema.ts';
import { upstreamSchema } from './upstream-schema.ts';
import { splitPattern } from '../proxy/tag-freshness.ts';

/** cache.hashThread's default: on one CPU a second thread has no core to run on. */
export const HASH_THREAD_MIN_CPUS = 2;

const hostPort = z
  .string()
  // abort: a malformed value gets one message, not also a bogus "port must be 0-65535".
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, { error: 'expected host:port, e.g. 0.0.0.0:5000', abort: true })
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port must be 0-65535');

/** The plain HTTP listener's address, or off (HTTPS only, on tls.listen). */
export const PLAIN_LISTENER_OFF = 'off';
const plainListen = z.union([z.literal(PLAIN_LISTENER_OFF), hostPort], { error: `expected host:port, e.g. 0.0.0.0:5000, or ${PLAIN_LISTENER_OFF}` });

const filePath = z.string().min(1, 'expected a file path');

/** The HTTPS listener: a certificate (with its chain) and key from PEM files, reloaded when they change. */
const tlsSchema = z
  .strictObject({
    listen: hostPort,
    /** PEM: the server certificate, then any intermediates. */
    certFile: filePath,
    keyFile: filePath,
    /** PEM: the CAs that issue client certificates. Set: clients may present one (mTLS). */
    clientCaFile: filePath.optional(),
    /** Refuse connections without a client certificate from clientCaFile. */
    requireClientCert: z.boolean().default(false),
  })
  .refine((t) => !t.requireClientCert || t.clientCaFile !== undefined, {
    message: 'requireClientCert needs clientCaFile (the CAs client certificates are checked against)',
    path: ['requireClientCert'],
  });

const positiveMs = z.number().int().positive();

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** A byte size: a number, or a string such as "50GiB", "500 MB" or "1TB". */
const byteSize = z.union([z.number().int().min(0), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected a size such as 50GiB, 500MB or a number of bytes' });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * unit);
});

const timeoutsSchema = z.strictObject({
  connectMs: positiveMs.default(3000),
  headersMs: positiveMs.default(5000),
  bodyIdleMs: positiveMs.default(30000),
  /** Whole-response deadline for small bodies (manifests, tag list pages, tokens): a slow drip ends here. */
  manifestTotalMs: positiveMs.default(10000),
  /** A blob body slower than this over a rate window is cut off (0: no minimum). */
  blobMinBytesPerSecond: z.number().int().min(0).default(16384),
  /** The window over which the blob minimum rate is measured. */
  blobRateWindowMs: positiveMs.default(10000),
});

const tagFreshnessRule = z.strictObject({
  /** `<repository glob>:<tag glob>`, e.g. docker.io/library/**:v* or **:latest. */
  match: z.string().superRefine((pattern, ctx) => {
    try {
      splitPattern(pattern);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  }),
  /** Seconds the tag is fresh, or immutable: never revalidated once cached. */
  ttlSeconds: z.union([z.number().int().min(0), z.literal('immutable')], { error: 'expected seconds (0 or more) or immutable' }),
});

export const configSchema = z
  .strictObject({
    listen: plainListen.default('0.0.0.0:5000'),
    /** An HTTPS listener beside (or, with listen: off, instead of) the plain one. Unset: none. */
    tls: tlsSchema.optional(),
    /**
     * Threads that accept connections. Above 1, the extra threads answer cache hits (manifests,
     * blobs) from the shared cache and hand everything else to the main thread. Each costs ~20 MB.
     */
    threads: z.number().int().min(1).max(16).default(1),
    dataDir: z.string().min(1).default('./data'),
    /** Send cached blobs with the kernel's sendfile(2) (native addon) rather than Node streams. */
    sendfile: z.boolean().default(true),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    admin: z
      .strictObject({
        /** Enables the admin API (/admin/...) for requests bearing this token. Unset: disabled. */
        token: z.string().min(16, 'use at least 16 characters').optional(),
      })
      .prefault({}),
    redis: z
      .strictObject({
        url: z.url({ protocol: /^rediss?$/, error: 'expected redis://host:port[/db] or rediss://...' }).optional(),
        keyPrefix: z.string().default('wharf:'),
        /**
         * Redis Sentinel: the sentinels (host:port) and the name of the master group they watch;
         * wharf asks them for the master and follows failovers. With them, url's password and db
         * still apply and its host is not used.
         */
        sentinels: z.array(hostPort).min(1).optional(),
        sentinelName: z.string().min(1).optional(),
        /** Redis Cluster: some of its nodes (host:port); the client learns the rest. url's password still applies. */
        cluster: z.array(hostPort).min(1).optional(),
      })
      .refine((r) => (r.sentinels === undefined) === (r.sentinelName === undefined), { message: 'set sentinels and sentinelName together', path: ['sentinels'] })
      .refine((r) => r.cluster === undefined || r.sentinels === undefined, { message: 'set cluster or sentinels, not both', path: ['cluster'] })
      .prefault({}),
    /** Where blobs are shared besides the data dir (blobs.s3: S3-compatible object storage). */
    blobs: blobsSchema,
    /** Replicas sharing Redis (and S3): one upstream fill per blob between them. Unset: one wharf alone. */
    cluster: clusterSchema.optional(),
    cache: z
      .strictObject({
        /** Seconds a tag is served without asking the upstream. */
        tagTtlSeconds: z.number().int().min(0).default(60),
        /** Per-pattern tag freshness, first match wins (proxy/tag-freshness.ts); others: tagTtlSeconds. */
        tagFreshness: z.array(tagFreshnessRule).default([]),
        /** Manifests kept in memory in front of the manifest store (their bodies also bounded: 64 MiB). */
        memoryManifests: z.number().int().min(0).default(16_384),
        /** Size budget for cached blobs; least recently used ones are evicted above it. Unset: none. */
        maxBytes: byteSize.optional(),
        /** Evict until the data dir's disk has this much free space. 0 turns it off. */
        minFreeBytes: byteSize.default(2 ** 30),
        /** Tags the upstream has not confirmed for this long are dropped by gc (re-resolved when asked). */
        tagRetentionDays: z.number().int().min(1).default(90),
        /** Blobs used this recently are never evicted (a pull in progress). */
        evictionGraceSeconds: z.number().int().min(0).default(60),
        /** Images never evicted: references such as docker.io/library/alpine:3.20 or ghcr.io/o/i@sha256:... */
        pinned: z.array(z.string().min(1)).default([]),
        /** Most tags kept for one repository's tag list; a longer list is refused, not cut. */
        tagListMaxTags: z.number().int().min(1).default(100_000),
        /** Most bytes read from the upstream for one repository's tag list, all pages together. */
        tagListMaxBytes: byteSize.default(16 * 2 ** 20),
        /**
         * Answer a Range on a blob not yet cached only from bytes whose digest was verified,
         * i.e. after the fill completes (a ranged read otherwise streams as the bytes arrive).
         */
        verifiedRangesOnly: z.boolean().default(false),
        /**
         * fdatasync each blob before it is renamed into place. Off, a power loss (not a crash of
         * wharf) can leave a cached blob whose bytes do not match its name, served as it is until
         * evicted. Clients never wait for it: they get the last byte once the digest matched,
         * and the blob counts as cached only after the sync and the rename.
         */
        fsync: z.boolean().default(true),
        /**
         * Hash blobs being fetched on a thread of their own (native/hash.c: no measurable
         * memory; a Worker, 10-20 MB, where the addon is not built), beside the main thread
         * that receives them and the pool that writes them: a cold fill then runs on more than
         * one core (~8 % faster on 2 vCPUs, docs/benchmarks.md). Default: on with at least
         * HASH_THREAD_MIN_CPUS CPUs.
         */
        hashThread: z.boolean().default(() => availableParallelism() >= HASH_THREAD_MIN_CPUS),
      })
      .prefault({}),
    timeouts: timeoutsSchema.prefault({}),
    /** Serve only the cache; never contact an upstream (air-gapped sites). */
    offline: z.boolean().default(false),
    resilience: z
      .strictObject({
        /** Longest wait for an upstream before a cached copy is served instead (stale). */
        staleAfterMs: positiveMs.default(1500),
        breaker: z
          .strictObject({
            /** Consecutive failures (refused, reset, 5xx, 429) that open the breaker. */
            failureThreshold: z.number().int().min(1).default(5),
            /** First wait before probing an open upstream; doubles per failed probe. */
            openMs: positiveMs.default(5000),
            /** Longest wait between probes. */
            maxOpenMs: positiveMs.default(60000),
          })
          .prefault({}),
      })
      .prefault({}),
    upstreams: z.array(upstreamSchema).default([]),
    /** Client authentication and access rules (auth-schema.ts). Unset: anyone may pull anything. */
    auth: authSchema.optional(),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.listen === PLAIN_LISTENER_OFF && cfg.tls === undefined) {
      ctx.addIssue({ code: 'custom', message: `with listen: ${PLAIN_LISTENER_OFF}, configure tls (wharf would listen nowhere)`, path: ['listen'] });
    }
    // Port 0 picks a free port for each listener; any other port cannot serve both.
    if (cfg.tls && cfg.tls.listen === cfg.listen && !cfg.listen.endsWith(':0')) {
      ctx.addIssue({ code: 'custom', message: 'the HTTPS listener needs an address of its own (plain HTTP is on listen)', path: ['tls', 'listen'] });
    }
    // Offline, upstreams only name registries; with none listed the common ones are served.
    if (cfg.upstreams.length === 0 && !cfg.offline) {
      ctx.addIssue({ code: 'custom', message: 'configure at least one upstream (or set offline: true)', path: ['upstreams'] });
    }
    const seen = new Set<string>();
    cfg.upstreams.forEach((u, i) => {
      if (seen.has(u.name)) ctx.addIssue({ code: 'custom', message: `duplicate upstream name ${u.name}`, path: ['upstreams', i, 'name'] });
      seen.add(u.name);
    });
    const { redis } = cfg;
    if (cfg.cluster && redis.url === undefined && redis.sentinels === undefined && redis.cluster === undefined) {
      ctx.addIssue({ code: 'custom', message: 'cluster needs redis (url, sentinels or cluster): the replicas meet there', path: ['cluster'] });
    }
    const defaults = cfg.upstreams.filter((u) => u.default).length;
    if (defaults > 1) ctx.addIssue({ code: 'custom', message: 'at most one upstream may be the default', path: ['upstreams'] });
  });

/** The registries an offline wharf without configured upstreams serves from its cache. */
export const OFFLINE_REGISTRIES = ['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io', 'gcr.io'] as const;

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type UpstreamConfig = ParsedConfig['upstreams'][number];

/** Keys holding a byte size: their environment values go to the schema as text ("50GiB"). */
export const SIZE_KEYS: ReadonlySet<string> = new Set(['cache.maxBytes', 'cache.minFreeBytes', 'cache.tagListMaxBytes']);

/** Scalar keys that WHARF_* environment variables may override (redis.url -> WHARF_REDIS_URL). */
export const ENV_OVERRIDABLE_KEYS = [
  'listen',
  'threads',
  'dataDir',
  'sendfile',
  'logLevel',
  'redis.url',
  'redis.keyPrefix',
  'cluster.advertiseUrl',
  'cluster.replicaName',
  'cache.tagTtlSeconds',
  'cache.memoryManifests',
  'cache.maxBytes',
  'cache.minFreeBytes',
  'timeouts.connectMs',
  'timeouts.headersMs',
  'timeouts.bodyIdleMs',
  'timeouts.manifestTotalMs',
  'timeouts.blobMinBytesPerSecond',
  'timeouts.blobRateWindowMs',
  'cache.tagListMaxTags',
  'cache.tagListMaxBytes',
  'cache.verifiedRangesOnly',
  'cache.fsync',
  'cache.hashThread',
  'offline',
  'resilience.staleAfterMs',
  'admin.token',
  'tls.listen',
  'tls.certFile',
  'tls.keyFile',
  'tls.clientCaFile',
  'tls.requireClientCert',
] as const;
