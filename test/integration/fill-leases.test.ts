// The fill lease on a real Redis, standalone and on a three-master Cluster (the two keys of a
// lease share a hash tag, or the script fails CROSSSLOT there): one winner per digest, higher
// fences for later leases, extension while held, release only by the holder, lapse when the
// holder stops extending, and "unavailable" rather than an error when Redis does not answer.
import { Redis, type Cluster } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHolder, RedisFillLeases } from '../../src/cluster/fill-leases.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.ts';

const logger = pino({ level: 'silent' });
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function leaseSuite(name: string, connect: () => Redis | Cluster) {
  describe(`fill leases on ${name}`, () => {
    let redis: Redis | Cluster;
    beforeAll(() => {
      redis = connect();
    });
    afterAll(() => redis.disconnect());

    it('gives a digest to one replica; the others learn who holds it and where', async () => {
      const b = new RedisFillLeases({ redis, keyPrefix: 'same:', me: { replica: 'b', url: 'http://127.0.0.1:2' }, ttlMs: 2000, logger });
      const c = new RedisFillLeases({ redis, keyPrefix: 'same:', me: { replica: 'c', url: 'http://127.0.0.1:3' }, ttlMs: 2000, logger });
      const claims = await Promise.all([b.claim(digest(1)), c.claim(digest(1)), b.claim(digest(1)), c.claim(digest(1))]);
      const won = claims.filter((x) => x.kind === 'won');
      expect(won).toHaveLength(1);
      const winner = won[0]!.kind === 'won' ? (claims.indexOf(won[0]!) % 2 === 0 ? 'b' : 'c') : '';
      for (const x of claims.filter((y) => y.kind === 'held')) {
        expect(x).toMatchObject({ kind: 'held', holder: { replica: winner, url: winner === 'b' ? 'http://127.0.0.1:2' : 'http://127.0.0.1:3' } });
      }
      if (won[0]!.kind === 'won') await won[0]!.lease.release();
    });

    it('gives each later lease of a digest a higher fence, and frees it only for its holder', async () => {
      const x = new RedisFillLeases({ redis, keyPrefix: 'fence:', me: { replica: 'x', url: 'http://127.0.0.1:4' }, ttlMs: 2000, logger });
      const y = new RedisFillLeases({ redis, keyPrefix: 'fence:', me: { replica: 'y', url: 'http://127.0.0.1:5' }, ttlMs: 2000, logger });
      const first = await x.claim(digest(2));
      if (first.kind !== 'won') throw new Error(`expected to win, got ${first.kind}`);
      expect((await y.claim(digest(2))).kind).toBe('held');
      await first.lease.release();
      await first.lease.release(); // twice is harmless
      const second = await y.claim(digest(2));
      if (second.kind !== 'won') throw new Error(`expected to win, got ${second.kind}`);
      expect(second.lease.fence).toBeGreaterThan(first.lease.fence);
      // x's old lease handle cannot free y's lease.
      await first.lease.release();
      expect(await x.claim(digest(2))).toMatchObject({ kind: 'held', holder: { replica: 'y', fence: second.lease.fence } });
      await second.lease.release();
    });

    it('keeps a held lease alive past its TTL, and lets it lapse once the holder is gone', async () => {
      // The holder has a connection of its own, so that it can die alone.
      const own = connect();
      const holder = new RedisFillLeases({ redis: own, keyPrefix: 'ttl:', me: { replica: 'h', url: 'http://127.0.0.1:6' }, ttlMs: 1000, logger });
      const other = new RedisFillLeases({ redis, keyPrefix: 'ttl:', me: { replica: 'o', url: 'http://127.0.0.1:7' }, ttlMs: 1000, logger });
      const held = await holder.claim(digest(3));
      if (held.kind !== 'won') throw new Error('expected to win');
      await sleep(2200); // more than twice the TTL: only the extensions keep it
      expect((await other.claim(digest(3))).kind).toBe('held');
      own.disconnect(); // the holder died: nothing extends its lease any more
      await sleep(1300);
      const next = await other.claim(digest(3));
      expect(next.kind).toBe('won');
      if (next.kind === 'won') {
        expect(next.lease.fence).toBeGreaterThan(held.lease.fence);
        await next.lease.release();
      }
      await held.lease.release(); // Redis gone for it: a no-op, not an error
    });

    it('tells a holder whose lease lapsed and was taken that it lost it', async () => {
      let lost = 0;
      const slow = new RedisFillLeases({ redis, keyPrefix: 'lost:', me: { replica: 's', url: 'http://127.0.0.1:8' }, ttlMs: 900, logger, onLost: () => lost++ });
      const other = new RedisFillLeases({ redis, keyPrefix: 'lost:', me: { replica: 'o', url: 'http://127.0.0.1:9' }, ttlMs: 900, logger });
      const held = await slow.claim(digest(4));
      if (held.kind !== 'won') throw new Error('expected to win');
      await redis.del(`lost:{fill:${digest(4)}}:lease`); // as if it had lapsed while this replica stalled
      const taken = await other.claim(digest(4));
      expect(taken.kind).toBe('won');
      await sleep(700);
      expect(lost).toBe(1);
      await held.lease.release();
      expect((await slow.claim(digest(4))).kind).toBe('held'); // the release left the other's lease alone
      if (taken.kind === 'won') await taken.lease.release();
    });
  });
}

let server: RedisServer;
let cluster: RedisCluster;
beforeAll(async () => {
  [server, cluster] = await Promise.all([startRedisServer(), startRedisCluster()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([server?.stop(), cluster?.stop()]);
});

leaseSuite('a standalone Redis', () => new Redis(server.url));
leaseSuite('a three-master Redis Cluster', () => cluster.client());

describe('fill leases without Redis', () => {
  it('answers unavailable, not an error, when Redis does not answer', async () => {
    const gone = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const leases = new RedisFillLeases({ redis: gone, keyPrefix: 'x:', me: { replica: 'a', url: 'http://127.0.0.1:1' }, ttlMs: 1000, logger });
    expect((await leases.claim(digest(5))).kind).toBe('unavailable');
    gone.disconnect();
  });

  it('reads holders back and refuses values that are not leases', () => {
    expect(parseHolder('7|wharf-0|http://10.0.0.5:5000')).toEqual({ fence: 7, replica: 'wharf-0', url: 'http://10.0.0.5:5000' });
    for (const bad of ['', 'x|a|http://h', '1|a', '1|a|http://h|extra', '|a|http://h']) expect(parseHolder(bad)).toBeUndefined();
  });
});
