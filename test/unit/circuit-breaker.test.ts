import { afterEach, describe, expect, it } from 'vitest';
import { CircuitBreaker, type BreakerState } from '../../src/proxy/circuit-breaker.ts';

const breakers: CircuitBreaker[] = [];
afterEach(() => breakers.splice(0).forEach((b) => b.stop()));

function breaker(probe: () => Promise<boolean>, opts: { failureThreshold?: number; openMs?: number } = {}) {
  const transitions: string[] = [];
  const b = new CircuitBreaker({
    failureThreshold: opts.failureThreshold ?? 3,
    openMs: opts.openMs ?? 30,
    maxOpenMs: 200,
    probe,
    onStateChange: (state: BreakerState) => transitions.push(state),
  });
  breakers.push(b);
  return { b, transitions };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('CircuitBreaker', () => {
  it('opens only after the threshold of consecutive failures', () => {
    const { b } = breaker(async () => false);
    b.recordFailure('refused');
    b.recordFailure('refused');
    b.recordSuccess();
    b.recordFailure('refused');
    b.recordFailure('refused');
    expect(b.allowRequest()).toBe(true);
    b.recordFailure('refused');
    expect(b.state).toBe('open');
    expect(b.allowRequest()).toBe(false);
    expect(b.retryAfterSeconds()).toBeGreaterThanOrEqual(1);
  });

  it('does not open on error answers (5xx, 429) while the probe finds the upstream answering', async () => {
    let probes = 0;
    const { b, transitions } = breaker(async () => {
      probes++;
      return true;
    });
    for (let i = 0; i < 10; i++) b.recordErrorAnswer('HTTP 500');
    await sleep(5);
    expect(b.state).toBe('closed');
    expect(transitions).toEqual([]);
    // One probe per threshold crossing, not one per error answer.
    expect(probes).toBeGreaterThanOrEqual(1);
    expect(probes).toBeLessThanOrEqual(4);
  });

  it('opens on error answers once the probe fails too', async () => {
    const { b } = breaker(async () => false);
    for (let i = 0; i < 3; i++) b.recordErrorAnswer('HTTP 503');
    await sleep(5);
    expect(b.state).toBe('open');
  });

  it('opens at once on a hang', () => {
    const { b } = breaker(async () => false);
    b.trip('no answer within 1500 ms');
    expect(b.state).toBe('open');
  });

  it('probes in the background and closes when the probe succeeds', async () => {
    let alive = false;
    let probes = 0;
    const { b, transitions } = breaker(async () => (probes++, alive));
    b.trip('hang');
    await sleep(45);
    expect(probes).toBe(1);
    expect(b.state).toBe('open');
    alive = true;
    // The failed probe doubled the wait: 60 ms.
    await sleep(90);
    expect(b.state).toBe('closed');
    expect(transitions).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('turns client requests away while probing', async () => {
    let release: (v: boolean) => void = () => undefined;
    const { b } = breaker(() => new Promise((r) => (release = r)));
    b.trip('hang');
    await sleep(45);
    expect(b.state).toBe('half-open');
    expect(b.allowRequest()).toBe(false);
    release(true);
    await sleep(5);
    expect(b.allowRequest()).toBe(true);
  });

  it('closes when a late answer arrives for a request that hung', () => {
    const { b } = breaker(async () => false);
    b.trip('hang');
    b.recordSuccess();
    expect(b.state).toBe('closed');
    expect(b.allowRequest()).toBe(true);
  });
});
