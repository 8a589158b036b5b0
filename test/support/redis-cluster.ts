// A Redis Cluster of three masters (no replicas) on 127.0.0.1 for one test file: real redis-server
// processes in memory only, joined with `redis-cli --cluster create`, stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { freePort } from './free-port.ts';
import { run } from './run.ts';
import { stopProcess } from './stop-process.ts';
import { makeTempDir } from './temp-dir.ts';

const REDIS_SERVER = '/usr/bin/redis-server';

export interface RedisCluster {
  /** host:port of every master. */
  readonly nodes: readonly string[];
  client(): Cluster;
  stop(): Promise<void>;
}

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = await makeTempDir('wharf-redis-cluster-');
  const children: ChildProcess[] = [];
  const nodes: string[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      const args = ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port), '--cluster-enabled', 'yes', '--cluster-config-file', join(dir.path, `nodes-${port}.conf`), '--cluster-node-timeout', '2000'];
      children.push(spawn(REDIS_SERVER, args, { stdio: 'ignore', cwd: dir.path }));
      nodes.push(`127.0.0.1:${port}`);
    }
    for (const node of nodes) await waitFor(() => run('redis-cli', ['-h', '127.0.0.1', '-p', node.split(':')[1]!, 'ping']).then((r) => r.stdout.includes('PONG')), `${node} to start`);
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
    for (const node of nodes) {
      await waitFor(() => run('redis-cli', ['-h', '127.0.0.1', '-p', node.split(':')[1]!, 'cluster', 'info']).then((r) => r.stdout.includes('cluster_state:ok')), `${node} to join`);
    }
  } catch (err) {
    for (const child of children) await stopProcess(child);
    await dir.cleanup();
    throw err;
  }
  return {
    nodes,
    client: () => new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })), { enableAutoPipelining: true }),
    async stop() {
      for (const child of children) await stopProcess(child);
      await dir.cleanup();
    },
  };
}

async function waitFor(ok: () => Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    if (await ok().catch(() => false)) return;
  }
  throw new Error(`redis cluster: timed out waiting for ${what}`);
}
