// A Redis Sentinel set on 127.0.0.1 for one test file: a master, one replica and one sentinel
// (quorum 1), real redis-server processes in memory only, stopped by PID. failover() asks the
// sentinel to promote the replica, as an operator or a dead master would.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.ts';
import { startRedisServer, type RedisServer } from './redis-server.ts';
import { stopProcess } from './stop-process.ts';
import { makeTempDir, type TempDir } from './temp-dir.ts';

const REDIS_SERVER = '/usr/bin/redis-server';
export const SENTINEL_NAME = 'wharfmaster';

export interface RedisSentinelSet {
  /** host:port of the sentinel. */
  readonly sentinel: string;
  /** The master's port as the sentinel reports it now. */
  masterPort(): Promise<number>;
  /** Promotes the replica; resolves once the sentinel names the new master. */
  failover(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisSentinelSet(): Promise<RedisSentinelSet> {
  const dir: TempDir = await makeTempDir('wharf-sentinel-');
  const children: ChildProcess[] = [];
  const master: RedisServer = await startRedisServer();
  const replicaPort = await freePort();
  children.push(spawn(REDIS_SERVER, ['--save', '', '--appendonly', 'no', '--repl-diskless-load', 'swapdb', '--bind', '127.0.0.1', '--port', String(replicaPort), '--replicaof', '127.0.0.1', String(master.port)], { stdio: 'ignore', cwd: dir.path }));
  const sentinelPort = await freePort();
  const conf = join(dir.path, 'sentinel.conf');
  // The sentinel rewrites its own file: it must be writable.
  await writeFile(
    conf,
    [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${SENTINEL_NAME} 1000`,
      `sentinel failover-timeout ${SENTINEL_NAME} 5000`,
      '',
    ].join('\n'),
  );
  children.push(spawn(REDIS_SERVER, [conf, '--sentinel'], { stdio: 'ignore', cwd: dir.path }));
  const sentinel = new Redis({ host: '127.0.0.1', port: sentinelPort, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  sentinel.on('error', () => undefined);
  const masterPort = async () => Number(((await sentinel.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_NAME)) as [string, string])[1]);
  const until = async (ok: () => Promise<boolean>, what: string) => {
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) if (await ok().catch(() => false)) return;
    throw new Error(`redis sentinel set: timed out waiting for ${what}`);
  };
  await until(async () => (await sentinel.ping()) === 'PONG', 'the sentinel');
  // The sentinel must know the replica before it can promote it.
  await until(async () => ((await sentinel.call('SENTINEL', 'replicas', SENTINEL_NAME)) as unknown[]).length > 0, 'the sentinel to see the replica');
  return {
    sentinel: `127.0.0.1:${sentinelPort}`,
    masterPort,
    async failover() {
      const before = await masterPort();
      await sentinel.call('SENTINEL', 'failover', SENTINEL_NAME);
      await until(async () => (await masterPort()) !== before, 'the failover');
    },
    async stop() {
      sentinel.disconnect();
      for (const child of children.reverse()) await stopProcess(child);
      await master.stop();
      await dir.cleanup();
    },
  };
}
