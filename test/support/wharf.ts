// Starts a real wharf (HTTP server on 127.0.0.1:0, HTTPS beside it when asked) from a real
// config file, as `wharf serve` would, with its data in a temp dir.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load-config.ts';
import { createLogger } from '../../src/logger.ts';
import { startServer, type RunningServer } from '../../src/server.ts';

export interface WharfOptions {
  upstreams: Array<{
    name: string;
    url: string;
    default?: boolean;
    username?: string;
    password?: string;
    passwordFile?: string;
    credentialHelper?: { command: string; lifetimeSeconds?: number; serverUrl?: string };
    aad?: { accessTokenFile: string; tenant?: string };
    redirectHosts?: string[];
    authRealmHosts?: string[];
    timeouts?: WharfOptions['timeouts'];
    repositories?: { allow?: string[]; deny?: string[] };
    limits?: { maxConcurrent?: number; requestsPerSecond?: number; burst?: number; maxWaitMs?: number };
    prefetch?: boolean;
    fallbackUrls?: string[];
  }>;
  /** The auth block as in the config file (src/config/auth-schema.ts). */
  auth?: Record<string, unknown>;
  dataDir?: string;
  redisUrl?: string;
  /** The redis block as in the config file (sentinels and sentinelName, say); redisUrl is a shorthand. */
  redis?: Record<string, unknown>;
  tagTtlSeconds?: number;
  cache?: {
    maxBytes?: number | string;
    minFreeBytes?: number | string;
    evictionGraceSeconds?: number;
    pinned?: string[];
    tagListMaxTags?: number;
    tagListMaxBytes?: number | string;
    verifiedRangesOnly?: boolean;
    fsync?: boolean;
    hashThread?: boolean;
    tagFreshness?: Array<{ match: string; ttlSeconds: number | 'immutable' }>;
  };
  timeouts?: {
    connectMs?: number;
    headersMs?: number;
    bodyIdleMs?: number;
    manifestTotalMs?: number;
    blobMinBytesPerSecond?: number;
    blobRateWindowMs?: number;
  };
  offline?: boolean;
  adminToken?: string;
  resilience?: { staleAfterMs?: number; breaker?: { failureThreshold?: number; openMs?: number; maxOpenMs?: number } };
  logLevel?: string;
  threads?: number;
  sendfile?: boolean;
  /** The plain listener: default 127.0.0.1:0; 'off' for HTTPS only. */
  listen?: string;
  /** An HTTPS listener on 127.0.0.1:0 with these files. */
  tls?: { certFile: string; keyFile: string; clientCaFile?: string; requireClientCert?: boolean; listen?: string };
  /** The cluster block (src/config/scale-out-schema.ts); its secretFile must outlive the start. */
  cluster?: Record<string, unknown>;
  /** The blobs block (blobs.s3). */
  blobs?: Record<string, unknown>;
  /** Where log lines go (default stdout); a test can collect them. */
  logDestination?: DestinationStream;
}

export interface TestWharf extends RunningServer {
  readonly dataDir: string;
  /** Host:port as clients write it in image references. */
  readonly host: string;
  /** The same for the HTTPS listener, when there is one. */
  readonly tlsHost?: string;
  stop(): Promise<void>;
}

export async function startWharf(opts: WharfOptions): Promise<TestWharf> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'wharf-data-')));
  const configDir = await mkdtemp(join(tmpdir(), 'wharf-config-'));
  const configPath = join(configDir, 'wharf.yaml');
  const config: Record<string, unknown> = {
    listen: opts.listen ?? '127.0.0.1:0',
    dataDir,
    logLevel: opts.logLevel ?? process.env.WHARF_TEST_LOG_LEVEL ?? 'silent',
    cache: { tagTtlSeconds: opts.tagTtlSeconds ?? 60, ...opts.cache },
    upstreams: opts.upstreams,
  };
  if (opts.threads !== undefined) config.threads = opts.threads;
  if (opts.sendfile !== undefined) config.sendfile = opts.sendfile;
  if (opts.tls) config.tls = { listen: '127.0.0.1:0', ...opts.tls };
  if (opts.redisUrl) config.redis = { url: opts.redisUrl };
  if (opts.redis) config.redis = opts.redis;
  if (opts.timeouts) config.timeouts = opts.timeouts;
  if (opts.offline !== undefined) config.offline = opts.offline;
  if (opts.adminToken !== undefined) config.admin = { token: opts.adminToken };
  if (opts.resilience) config.resilience = opts.resilience;
  if (opts.auth) config.auth = opts.auth;
  if (opts.cluster) config.cluster = opts.cluster;
  if (opts.blobs) config.blobs = opts.blobs;
  await writeFile(configPath, stringify(config));
  let server: RunningServer;
  try {
    const loaded = await loadConfig({ path: configPath, env: {} }).finally(() => rm(configDir, { recursive: true, force: true }));
    server = await startServer(loaded, createLogger(loaded.logLevel, opts.logDestination));
  } catch (err) {
    // A start that fails (tests that expect it to) leaves no data dir behind.
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...server,
    dataDir,
    host: `127.0.0.1:${server.port}`,
    ...(server.tls ? { tlsHost: `127.0.0.1:${server.tls.port}` } : {}),
    async stop() {
      await server.close(2000);
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
