// The access log puts its line together itself; it must read exactly as pino's own line for the
// same fields would (log tooling parses both), for the main logger and a hit thread's child.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { AccessLog, jsonString, type AccessLogFields } from '../../src/logging/access-log.ts';
import { LogLines } from '../support/log-lines.ts';

const fields: AccessLogFields = {
  reqId: 'r-1',
  method: 'GET',
  url: '/v2/library/a"b\\c/manifests/latest?ns=docker.io',
  status: 200,
  cache: 'hit',
  bytes: 1234,
  ms: 0.4,
  upstream: 'docker.io',
  completed: true,
  userAgent: 'docker/20.10 \u0001 "quoted" é',
  identity: 'user:ci',
  client: '127.0.0.1',
  clientCN: undefined,
};

describe('AccessLog', () => {
  it.each([
    ['the main logger', (logs: LogLines) => createLogger('info', logs)],
    ['a hit thread child logger', (logs: LogLines) => createLogger('info', logs).child({ thread: 3 })],
  ])('writes the line pino would write, for %s', async (_name, make) => {
    const ours = new LogLines();
    const pinos = new LogLines();
    new AccessLog(make(ours)).write(fields);
    make(pinos).info({ ...fields }, 'request');
    await new Promise((r) => setImmediate(r));
    expect(ours.lines).toHaveLength(1);
    const { time: ourTime, ...ourLine } = ours.lines[0]!;
    const { time: pinoTime, ...pinoLine } = pinos.lines[0]!;
    expect(ourLine).toEqual(pinoLine);
    expect(Object.keys(ours.lines[0]!)).toEqual(Object.keys(pinos.lines[0]!));
    expect(Math.abs(Date.parse(String(ourTime)) - Date.parse(String(pinoTime)))).toBeLessThan(1000);
  });

  it('writes each line from its own fields when they change from line to line (parts of the last line are reused)', async () => {
    const changed: Record<keyof AccessLogFields, unknown> = {
      reqId: 'r-2',
      method: 'HEAD',
      url: '/v2/other/manifests/1',
      status: 404,
      cache: undefined,
      bytes: 0,
      ms: 12.5,
      upstream: undefined,
      completed: false,
      userAgent: undefined,
      identity: undefined,
      client: '10.0.0.1',
      clientCN: 'builder',
    };
    // Each field changed alone, then the original again: a reused part that missed a change shows.
    const sequence: AccessLogFields[] = [fields];
    for (const key of Object.keys(changed) as Array<keyof AccessLogFields>) sequence.push({ ...fields, [key]: changed[key] }, fields);
    const ours = new LogLines();
    const pinos = new LogLines();
    const log = new AccessLog(createLogger('info', ours));
    const pino = createLogger('info', pinos);
    for (const f of sequence) {
      log.write(f);
      pino.info(Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)), 'request');
    }
    await new Promise((r) => setImmediate(r));
    const withoutTime = (lines: Array<Record<string, unknown>>) => lines.map(({ time: _, ...rest }) => rest);
    expect(withoutTime(ours.lines)).toEqual(withoutTime(pinos.lines));
    expect(ours.lines).toHaveLength(sequence.length);
  });

  it('writes nothing below level info', async () => {
    const logs = new LogLines();
    const log = new AccessLog(createLogger('warn', logs));
    expect(log.enabled).toBe(false);
    log.write(fields);
    await new Promise((r) => setImmediate(r));
    expect(logs.lines).toHaveLength(0);
  });

  it('quotes every string exactly as JSON.stringify does', () => {
    const every = Array.from({ length: 256 }, (_, c) => String.fromCharCode(c));
    const samples = [...every, '', '/v2/library/alpine/manifests/3.20', 'a"b', 'a\\b', 'tab\there', 'é', '\u2028', '\ud800', '😀', 'x'.repeat(300)];
    for (const s of samples) expect(jsonString(s), JSON.stringify(s)).toBe(JSON.stringify(s));
  });
});
