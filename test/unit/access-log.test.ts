// The access log puts its line together itself; it must read exactly as pino's own line for the
// same fields would (log tooling parses both), for the main logger and a hit thread's child, and
// byte for byte the same whether it encodes the line into wharf's own writers (the main thread's
// file writer, a hit thread's posted buffers) or hands text to any other stream.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { AccessLog, jsonString, type AccessLogFields } from '../../src/logging/access-log.ts';
import { BatchedLogWriter } from '../../src/logging/batched-log-writer.ts';
import { PostedLogLines } from '../../src/threads/posted-log-lines.ts';
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

const changed: Record<keyof AccessLogFields, unknown> = {
  reqId: 'r-2 "odd" ü',
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

/** Each field changed alone, then the original again: a reused part that missed a change shows. */
function changingSequence(): AccessLogFields[] {
  const sequence: AccessLogFields[] = [fields];
  for (const key of Object.keys(changed) as Array<keyof AccessLogFields>) sequence.push({ ...fields, [key]: changed[key] }, fields);
  // Milliseconds as the observer rounds them, and ones it never makes (printed as JavaScript does).
  for (const ms of [0, 0.1, 0.9, 1, 9.9, 10, 10.5, 99.9, 1234567.8, 2 ** 53, 0.05, 1e21, 3.14159]) sequence.push({ ...fields, ms });
  // HEAD and GET of one URL in turn (docker does), and many URLs in turn (a client's pull).
  for (let i = 0; i < 40; i++) sequence.push({ ...fields, method: i % 2 ? 'HEAD' : 'GET', bytes: i % 2 ? 0 : 1234, url: `/v2/library/a/manifests/t${i % 7}` });
  return sequence;
}

const withoutTime = (lines: Array<Record<string, unknown>>) => lines.map(({ time: _, ...rest }) => rest);
/** Raw lines with the time's value blanked: the rest must match byte for byte. */
const timeBlanked = (text: string) => text.split('\n').filter(Boolean).map((l) => l.replace(/"time":"[^"]*"/, '"time":""'));

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

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
    const sequence = changingSequence();
    const ours = new LogLines();
    const pinos = new LogLines();
    const log = new AccessLog(createLogger('info', ours));
    const pino = createLogger('info', pinos);
    for (const f of sequence) {
      log.write(f);
      pino.info(Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)), 'request');
    }
    await new Promise((r) => setImmediate(r));
    expect(withoutTime(ours.lines)).toEqual(withoutTime(pinos.lines));
    expect(ours.lines).toHaveLength(sequence.length);
  });

  it('encodes into the file writer exactly the bytes it hands other streams as text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-accesslog-'));
    dirs.push(dir);
    const file = join(dir, 'out.log');
    const fd = openSync(file, 'w');
    const writer = new BatchedLogWriter(fd);
    const text = new LogLines();
    const encoded = new AccessLog(createLogger('info', writer).child({ thread: 0 }));
    const plain = new AccessLog(createLogger('info', text).child({ thread: 0 }));
    const sequence = changingSequence();
    // Enough lines to fill many 64 KiB chunks, with writes (and chunks coming back) in between.
    for (let round = 0; round < 60; round++) {
      for (const f of sequence) {
        encoded.write(f);
        plain.write(f);
      }
      if (round % 10 === 0) await new Promise((r) => setTimeout(r, 25));
    }
    await writer.flush();
    closeSync(fd);
    await new Promise((r) => setImmediate(r));
    expect(timeBlanked(readFileSync(file, 'utf8'))).toEqual(text.raw.map((l) => l.replace(/"time":"[^"]*"/, '"time":""')));
    expect(text.raw).toHaveLength(sequence.length * 60);
    expect(writer.droppedLines).toBe(0);
  });

  it("encodes into a hit thread's posted buffers the same lines, a line longer than a buffer too", async () => {
    const posted: Buffer[] = [];
    const hit = new PostedLogLines((message) => {
      if (message.type === 'log') posted.push(Buffer.from(message.bytes));
    });
    const text = new LogLines();
    const encoded = new AccessLog(createLogger('info', hit).child({ thread: 1 }));
    const plain = new AccessLog(createLogger('info', text).child({ thread: 1 }));
    const sequence = [...changingSequence(), { ...fields, userAgent: 'é'.repeat(40_000) }, fields];
    // Enough lines to fill several 64 KiB buffers.
    for (let round = 0; round < 30; round++) {
      for (const f of sequence) {
        encoded.write(f);
        plain.write(f);
      }
    }
    hit.flush();
    await new Promise((r) => setImmediate(r));
    expect(posted.length).toBeGreaterThan(3);
    expect(timeBlanked(Buffer.concat(posted).toString('utf8'))).toEqual(text.raw.map((l) => l.replace(/"time":"[^"]*"/, '"time":""')));
    expect(text.raw).toHaveLength(sequence.length * 30);
  });

  it('writes the time of each line, also once the millisecond has changed', async () => {
    const logs = new LogLines();
    const log = new AccessLog(createLogger('info', logs));
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = Date.now();
      log.write(fields);
      times.push(before);
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setImmediate(r));
    const written = logs.lines.map((l) => Date.parse(String(l.time)));
    expect(written).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      expect(written[i]).toBeGreaterThanOrEqual(times[i]!);
      expect(written[i]).toBeLessThan(times[i]! + 5);
    }
    expect(new Set(written).size).toBe(3);
  });

  it('drops a line the file writer has no room for, counts it, and writes the rest whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-accesslog-'));
    dirs.push(dir);
    const file = join(dir, 'out.log');
    const fd = openSync(file, 'w');
    const writer = new BatchedLogWriter(fd, { maxPendingBytes: 2000 });
    const log = new AccessLog(createLogger('info', writer));
    // ~340-byte lines, reserved at their worst case: a few fit, the rest of the turn's are dropped.
    for (let i = 0; i < 10; i++) log.write({ ...fields, reqId: `r-${i}` });
    const dropped = writer.droppedLines;
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(10);
    await writer.flush();
    closeSync(fd);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { reqId?: string; dropped?: number; msg: string });
    expect(lines.filter((l) => l.msg === 'request').map((l) => l.reqId)).toEqual(Array.from({ length: 10 - dropped }, (_, i) => `r-${i}`));
    expect(lines.find((l) => l.dropped !== undefined)?.dropped).toBe(dropped);
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
