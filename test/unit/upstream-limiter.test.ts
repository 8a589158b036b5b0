// The per-upstream caps: in flight, started per second, and how long a request may wait.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UpstreamBusyError, UpstreamLimiter } from '../../src/proxy/upstream-limiter.ts';

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('UpstreamLimiter', () => {
  it('lets maxConcurrent in, the rest wait in line and go in as turns end, first come first served', async () => {
    const limiter = new UpstreamLimiter({ maxConcurrent: 2 });
    const order: number[] = [];
    const turns = [0, 1, 2, 3, 4].map((i) => limiter.acquire(10_000).then((release) => (order.push(i), release)));
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([0, 1]);
    expect([limiter.inFlight, limiter.waiting]).toEqual([2, 3]);
    (await turns[1]!)();
    (await turns[1]!)(); // released twice: counted once
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([0, 1, 2]);
    expect(limiter.inFlight).toBe(2);
    (await turns[0]!)();
    (await turns[2]!)();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('turns away a request that waited longer than it may, and keeps the line moving', async () => {
    const limiter = new UpstreamLimiter({ maxConcurrent: 1 });
    const first = await limiter.acquire(1000);
    const patient = limiter.acquire(5000);
    const hasty = limiter.acquire(1000);
    hasty.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(1001);
    await expect(hasty).rejects.toBeInstanceOf(UpstreamBusyError);
    expect(limiter.waiting).toBe(1);
    first();
    const release = await patient;
    expect(limiter.inFlight).toBe(1);
    release();
    expect(limiter.inFlight).toBe(0);
  });

  it('starts at most requestsPerSecond on average after a burst', async () => {
    const limiter = new UpstreamLimiter({ requestsPerSecond: 4, burst: 2 });
    const started: number[] = [];
    for (let i = 0; i < 10; i++) void limiter.acquire(60_000).then((release) => (started.push(Date.now()), release()));
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toEqual([0, 0]); // the burst
    await vi.advanceTimersByTimeAsync(2000);
    // Then one every 250 ms: 8 more in 2 s.
    expect(started.length).toBe(10);
    expect(started.slice(2)).toEqual([250, 500, 750, 1000, 1250, 1500, 1750, 2000]);
  });

  it('has no limits without caps, and refuses every waiter when closed', async () => {
    expect(new UpstreamLimiter({}).limits).toBe(false);
    const limiter = new UpstreamLimiter({ maxConcurrent: 1 });
    expect(limiter.limits).toBe(true);
    await limiter.acquire(1000);
    const waiting = limiter.acquire(60_000);
    limiter.close();
    await expect(waiting).rejects.toThrow('wharf is stopping');
  });
});
