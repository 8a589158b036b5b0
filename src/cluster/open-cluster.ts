// What a replica needs to share fills with the others (config `cluster`): its name and
// address, the secret they show each other, the fill leases and the heartbeat on Redis, and
// the client that reads a blob from the replica filling it. Built once, by the composition root.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { openServingRedis } from '../cache/open-stores.ts';
import { ClusterSecret } from './cluster-secret.ts';
import { RedisFillLeases, type FillLeases } from './fill-leases.ts';
import { PeerClient } from './peer-client.ts';
import { ReplicaRegistry } from './replica-registry.ts';

export interface ClusterParts {
  readonly name: string;
  readonly secret: ClusterSecret;
  readonly leases: FillLeases;
  readonly peers: PeerClient;
  readonly replicas: ReplicaRegistry;
  close(): Promise<void>;
}

/** The cluster secret, read before anything else starts: a wharf that cannot guard its peer endpoint does not start. */
export async function readClusterSecret(config: Config): Promise<ClusterSecret | undefined> {
  return config.cluster && ClusterSecret.fromFile(config.cluster.secretFile);
}

async function readClusterCa(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cluster.caFile ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

export async function openCluster(
  config: Config,
  deps: { secret: ClusterSecret | undefined; logger: Logger; metrics: Metrics; version: string; startedAt: number },
): Promise<ClusterParts | undefined> {
  const { cluster } = config;
  const { secret, logger, metrics } = deps;
  if (!cluster || !secret) return undefined;
  const name = cluster.replicaName ?? hostname();
  const redis = await openServingRedis(config.redis, logger, 'redis (fill leases)');
  const me = { replica: name, url: cluster.advertiseUrl };
  const leases = new RedisFillLeases({
    redis,
    keyPrefix: config.redis.keyPrefix,
    me,
    ttlMs: cluster.leaseMs,
    logger,
    onLost: () => metrics.fillLeases.inc({ outcome: 'lost' }),
  });
  const peers = new PeerClient(secret, config.timeouts, cluster.caFile === undefined ? undefined : await readClusterCa(cluster.caFile));
  const replicas = new ReplicaRegistry({
    redis,
    keyPrefix: config.redis.keyPrefix,
    me: { name, url: cluster.advertiseUrl, version: deps.version, startedAt: deps.startedAt },
    figures: async () => {
      const f = await metrics.figures();
      const sum = (byResult: Readonly<Record<string, number>>, pick: (r: string) => boolean) =>
        Object.entries(byResult).reduce((total, [r, v]) => (pick(r) ? total + v : total), 0);
      return {
        servedBytes: sum(f.servedBytesByResult, () => true),
        servedFromCacheBytes: sum(f.servedBytesByResult, (r) => r !== 'miss' && r !== 'bypass'),
        upstreamBytes: f.upstreamBytes,
        fillsInFlight: (await metrics.fillsInFlight.get()).values[0]?.value ?? 0,
      };
    },
  });
  logger.info({ replica: name, advertiseUrl: cluster.advertiseUrl }, 'sharing fills with the other replicas on redis');
  return {
    name,
    secret,
    leases,
    peers,
    replicas,
    async close() {
      replicas.stop();
      await peers.close();
      redis.disconnect();
    },
  };
}
