// The one place that builds stores from the config, for every role: the server's main thread
// (owner), hit threads (reader) and CLI commands (command). A new backend is added here.
// Serving roles get Redis or the embedded files behind the fault tolerance layer and the
// in-memory LRU, with a Redis client set up to fail fast while Redis is away (no offline queue,
// a command deadline) and to reconnect on its own. Commands get the bare store, and an error
// when it cannot be reached, since there is no request to serve around it.
import { join } from 'node:path';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import { splitHostPort } from '../config/host-port.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { ManifestStore } from './manifest-store.ts';
import type { BlobStore } from './blob-store.ts';
import { createDiskBlobStore } from './disk-blob-store.ts';
import { HashOffload, type HashThread } from './hash-offload.ts';
import { loadNativeHashThread } from './native-hash-thread.ts';
import { EmbeddedManifestStore } from './embedded-manifest-store.ts';
import { RedisManifestStore } from './redis-manifest-store.ts';
import { FaultTolerantManifestStore } from './fault-tolerant-manifest-store.ts';
import { MemoryCachedManifestStore } from './memory-cached-manifest-store.ts';
import type { OpenedSharedBlobs } from './open-s3.ts';

const REDIS_COMMAND_TIMEOUT_MS = 1000;
const REDIS_FIRST_CONNECT_WAIT_MS = 2000;
/** Tag records held in memory whatever memoryManifests says: they cost ~300 bytes each. */
const MIN_MEMORY_TAGS = 10_000;

/**
 * The local disk store: the whole blob cache, or with blobs.s3 this replica's cache in front of
 * S3. hashOffload: the hash thread of the role that fills (the main thread's); unset: writers
 * hash on the calling thread.
 */
export function openBlobStore(config: Config, hashOffload?: HashThread): BlobStore {
  return createDiskBlobStore(config.dataDir, { fsync: config.cache.fsync, hashOffload });
}

/**
 * The hash thread fills hash on (cache.hashThread), or undefined for the calling thread: the
 * native one where its addon is built, else a Worker, which costs 10-20 MB more.
 */
export function openHashThread(config: Config, logger: Logger): HashThread | undefined {
  if (!config.cache.hashThread) return undefined;
  const native = loadNativeHashThread();
  if (!(native instanceof Error)) return native;
  logger.warn({ reason: native.message }, 'native hash addon unavailable (npm run build:native builds it): fills hash on a worker thread, 10-20 MB more memory');
  return new HashOffload();
}

/** The S3 store blobs are shared on (blobs.s3), or undefined when none is configured. */
export async function openSharedBlobs(config: Config, logger: Logger, metrics: Metrics): Promise<OpenedSharedBlobs | undefined> {
  if (!config.blobs.s3) return undefined;
  // The AWS SDK is loaded only for a wharf that uses S3: it is ~6 MB of heap and 1 500 modules.
  const { openS3SharedBlobs } = await import('./open-s3.ts');
  return openS3SharedBlobs(config, config.blobs.s3, logger, metrics);
}

/**
 * role 'reader' is for hit threads: they share the store with the main thread, which alone
 * cleans it up and writes; they re-read tags the main thread may have revalidated.
 */
export async function openManifestStore(config: Config, logger: Logger, metrics: Metrics, role: 'owner' | 'reader' = 'owner'): Promise<MemoryCachedManifestStore> {
  const persistent = usesRedis(config)
    ? await openRedisStore(config.redis, logger)
    : await openEmbeddedStore(config.dataDir, logger, role === 'owner');
  // Re-read a tag from the store once memory's copy is due for revalidation, where another
  // process may have revalidated it meanwhile: hit threads behind the main thread, and replicas
  // sharing Redis (so a tag costs one upstream HEAD per TTL between them, not one each).
  const shared = role === 'reader' || usesRedis(config);
  return new MemoryCachedManifestStore(new FaultTolerantManifestStore(persistent, { logger, metrics }), {
    maxManifests: config.cache.memoryManifests,
    // At least as many tag records as manifests: a tag is looked up before its manifest, so a
    // manifest held without its tag is no hit (with 100 000 tags and memoryManifests raised to
    // match, a fixed 10 000 tags left 9 in 10 requests to the store: bench/scale.ts).
    maxTags: Math.max(MIN_MEMORY_TAGS, config.cache.memoryManifests),
    tagRecheckAfterMs: shared ? config.cache.tagTtlSeconds * 1000 : undefined,
  });
}

/** The persistent store alone, for a command; rejects when Redis cannot be reached. */
export async function openCommandManifestStore(config: Config, logger: Logger): Promise<ManifestStore> {
  if (!usesRedis(config)) return new EmbeddedManifestStore(join(config.dataDir, 'manifests'));
  const redis = await redisClient(config.redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis'));
  await redis.connect();
  return new RedisManifestStore(redis, config.redis.keyPrefix, { ownsClient: true });
}

type RedisConfig = Config['redis'];

export type RedisClient = Redis | Cluster;

function usesRedis(config: Config): boolean {
  return config.redis.url !== undefined || config.redis.sentinels !== undefined || config.redis.cluster !== undefined;
}

/** A client for the configured Redis: one server by URL, the master Sentinel names, or a Cluster. */
async function redisClient(config: RedisConfig, options: RedisOptions): Promise<RedisClient> {
  // Loaded only when Redis is configured: ioredis costs ~10 MB of memory at import.
  const { Redis, Cluster } = await import('ioredis');
  const url = config.url === undefined ? undefined : new URL(config.url);
  const credentials = {
    ...(url?.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url?.username ? { username: decodeURIComponent(url.username) } : {}),
  };
  if (config.cluster !== undefined) {
    const { enableOfflineQueue, ...perNode } = options;
    return new Cluster(config.cluster.map(splitHostPort), {
      ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      enableAutoPipelining: options.enableAutoPipelining ?? false,
      lazyConnect: options.lazyConnect ?? false,
      redisOptions: { ...perNode, ...credentials },
      clusterRetryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    });
  }
  if (config.sentinels === undefined) return new Redis(config.url!, options);
  return new Redis({
    ...options,
    sentinels: config.sentinels.map(splitHostPort),
    name: config.sentinelName!,
    // Follow a failover as the sentinels announce it (+switch-master), and leave a master that
    // became a replica (READONLY) for the new one, rather than failing writes until a reconnect.
    failoverDetector: true,
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    ...credentials,
    ...(url && url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
  });
}

/** How the logs name the configured Redis (never its password). */
function redisName(config: RedisConfig): string {
  if (config.cluster !== undefined) return `cluster via ${config.cluster.join(',')}`;
  return config.sentinels === undefined ? redactedUrl(config.url!) : `sentinel ${config.sentinelName} via ${config.sentinels.join(',')}`;
}

async function openRedisStore(config: RedisConfig, logger: Logger): Promise<ManifestStore> {
  const redis = await openServingRedis(config, logger, 'redis');
  return new RedisManifestStore(redis, config.keyPrefix, { ownsClient: true });
}

/**
 * A Redis client for serving: commands fail fast while Redis is away and it reconnects on its
 * own; waits a moment for the first connection, never blocks start. what: how logs name it.
 */
export async function openServingRedis(config: RedisConfig, logger: Logger, what: string): Promise<RedisClient> {
  const url = redisName(config);
  const redis: RedisClient = await redisClient(config, {
    enableAutoPipelining: true,
    // While Redis is away, commands fail at once (the request goes on without the store)
    // instead of queueing until it returns; a hung Redis is bounded by the command timeout.
    enableOfflineQueue: false,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
  let connected = false;
  redis.on('ready', () => {
    connected = true;
    logger.info({ redis: url }, `${what} connected`);
  });
  redis.on('close', () => {
    if (connected) logger.warn({ redis: url }, `${what} connection lost; reconnecting`);
    connected = false;
  });
  // Without a listener ioredis would print every reconnect error; the close/ready lines say it.
  redis.on('error', () => undefined);
  // Give the first connection a moment so the first requests find the store; never block start.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, REDIS_FIRST_CONNECT_WAIT_MS);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  if (!connected) logger.warn({ redis: url }, `${what} not reachable at start; serving without it until it is`);
  return redis;
}

async function openEmbeddedStore(dataDir: string, logger: Logger, cleanUp: boolean): Promise<ManifestStore> {
  const store = new EmbeddedManifestStore(join(dataDir, 'manifests'));
  if (!cleanUp) return store;
  await store
    .removeTempFiles()
    .then((removed) => removed > 0 && logger.info({ removed }, 'removed manifest store temp files left by an earlier run'))
    .catch((err: unknown) => logger.error({ err: String(err) }, 'cannot clean manifest store temp files'));
  return store;
}

function redactedUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
