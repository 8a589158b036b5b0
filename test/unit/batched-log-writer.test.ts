// The log writer over real file descriptors: a file (every line whole, in order), a pipe nobody
// reads (memory stays bounded, lines are dropped and counted, one line says so once it drains),
// and a pipe whose reader is gone (logging stops, nothing throws).
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, constants } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatchedLogWriter } from '../../src/logging/batched-log-writer.ts';
import { PostedLogLines } from '../../src/threads/posted-log-lines.ts';
import type { HitThreadMessage } from '../../src/threads/messages.ts';
import { MessageChannel } from 'node:worker_threads';

const line = (i: number) => `${JSON.stringify({ level: 30, n: i, msg: 'request', pad: 'x'.repeat(200) })}\n`;
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-logwriter-'));
  dirs.push(dir);
  return dir;
};

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('BatchedLogWriter', () => {
  it('writes every line whole and in order, in few writes, a line longer than a chunk too', async () => {
    const file = join(tempDir(), 'out.log');
    const fd = openSync(file, 'w');
    const writer = new BatchedLogWriter(fd);
    const long = `${JSON.stringify({ level: 30, msg: 'long', pad: 'é'.repeat(100_000) })}\n`;
    for (let i = 0; i < 5000; i++) {
      writer.write(line(i));
      if (i === 2500) writer.write(long);
    }
    await writer.flush();
    closeSync(fd);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { n?: number; msg: string; pad: string });
    expect(lines.length).toBe(5001);
    expect(lines.filter((l) => l.msg === 'request').map((l) => l.n)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(lines[2501]!.pad).toBe('é'.repeat(100_000));
    expect(writer.droppedLines).toBe(0);
  });

  it('keeps lines written in one turn for a moment, then writes them without being asked', async () => {
    const file = join(tempDir(), 'out.log');
    const fd = openSync(file, 'w');
    const writer = new BatchedLogWriter(fd);
    writer.write(line(1));
    writer.write(line(2));
    expect(readFileSync(file, 'utf8')).toBe('');
    await new Promise((r) => setTimeout(r, 200));
    expect(readFileSync(file, 'utf8')).toBe(line(1) + line(2));
    closeSync(fd);
  });

  it("writes a hit thread's lines, encoded there and moved over a port, whole and in each thread's order among its own", async () => {
    const file = join(tempDir(), 'out.log');
    const fd = openSync(file, 'w');
    const writer = new BatchedLogWriter(fd);
    const { port1, port2 } = new MessageChannel();
    const moved: Uint8Array[] = [];
    const hit = new PostedLogLines((message: HitThreadMessage, transfer) => {
      if (message.type === 'log') moved.push(message.bytes);
      port1.postMessage(message, transfer);
    });
    let received = 0;
    let givenBack = 0;
    // Written buffers go back over the port, as the main thread gives them back to a hit thread.
    port2.on('message', (message: HitThreadMessage) => {
      if (message.type !== 'log') return;
      received++;
      writer.writeBytes(message.bytes, (buffer) => port2.postMessage({ type: 'log-buffer', buffer }, [buffer]));
    });
    port1.on('message', (message: { type: string; buffer: ArrayBuffer }) => {
      givenBack++;
      hit.giveBack(message.buffer);
    });
    const long = `${JSON.stringify({ level: 30, msg: 'long', pad: 'é'.repeat(100_000) })}\n`;
    const hitLine = (i: number) => `${JSON.stringify({ level: 30, hit: i, msg: 'request', pad: 'ü'.repeat(150) })}\n`;
    for (let i = 0; i < 4000; i++) {
      hit.write(hitLine(i));
      writer.write(line(i));
      if (i === 2000) hit.write(long);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    hit.flush();
    await new Promise((r) => setTimeout(r, 50));
    await writer.flush();
    closeSync(fd);
    port1.close();
    // Moved, not copied: the hit thread's side of each posted buffer is gone.
    expect(moved.length).toBe(received);
    expect(moved.every((bytes) => bytes.byteLength === 0)).toBe(true);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { n?: number; hit?: number; msg: string; pad: string });
    expect(lines.length).toBe(8001);
    expect(lines.filter((l) => l.n !== undefined).map((l) => l.n)).toEqual(Array.from({ length: 4000 }, (_, i) => i));
    expect(lines.filter((l) => l.hit !== undefined).map((l) => l.hit)).toEqual(Array.from({ length: 4000 }, (_, i) => i));
    expect(lines.find((l) => l.msg === 'long')!.pad).toBe('é'.repeat(100_000));
    expect(writer.droppedLines).toBe(0);
    // Every buffer written went back (the long line's too; the hit thread keeps only chunk-sized ones).
    expect(givenBack).toBe(received);
  });

  it('gives each buffer back once it is written, or at once when it is dropped', async () => {
    const fd = openSync(join(tempDir(), 'out.log'), 'w');
    const writer = new BatchedLogWriter(fd, { maxPendingBytes: 4000 });
    const back: ArrayBuffer[] = [];
    // Each in memory of its own, as a hit thread's buffers are (never a shared pool's).
    const own = (text: string) => {
      const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
      bytes.write(text);
      return bytes;
    };
    const first = own(line(1) + line(2));
    const second = own(line(3));
    writer.writeBytes(first, (b) => back.push(b));
    writer.writeBytes(second, (b) => back.push(b));
    expect(back).toEqual([]);
    await writer.flush();
    expect(back).toHaveLength(2);
    expect(back[0]).toBe(first.buffer);
    expect(back[1]).toBe(second.buffer);
    const tooMany = own(line(4).repeat(30));
    writer.writeBytes(tooMany, (b) => back.push(b));
    expect(back[2]).toBe(tooMany.buffer);
    expect(writer.droppedLines).toBe(30);
    await writer.flush();
    expect(back).toHaveLength(3);
    closeSync(fd);
  });

  it("fills a buffer given back to a hit thread's lines again instead of a new one", () => {
    const sent: ArrayBuffer[] = [];
    const hit = new PostedLogLines((message, transfer) => {
      if (message.type === 'log') sent.push(transfer[0]!);
    });
    hit.write(line(1));
    hit.flush();
    hit.write(line(2));
    hit.flush();
    expect(sent[1]).not.toBe(sent[0]);
    const reused = new ArrayBuffer(64 << 10);
    hit.giveBack(reused);
    hit.giveBack(new ArrayBuffer(100)); // not a chunk's size: not kept
    hit.write(line(3));
    hit.flush();
    expect(sent[2]).toBe(reused);
    expect(Buffer.from(reused, 0, line(3).length).toString()).toBe(line(3));
    hit.write(line(4));
    hit.flush();
    expect(sent[3]!.byteLength).toBe(64 << 10);
    expect(sent[3]).not.toBe(reused);
  });

  it("drops a hit thread's lines past its bound and counts each", () => {
    const fd = openSync(join(tempDir(), 'out.log'), 'w');
    const writer = new BatchedLogWriter(fd, { maxPendingBytes: 1000 });
    writer.writeBytes(Buffer.from(line(1) + line(2) + line(3) + line(4) + line(5)));
    expect(writer.droppedLines).toBe(5);
    closeSync(fd);
  });

  it('drops what a pipe nobody reads cannot take, bounded, and says how many once it drains', async () => {
    const fifo = join(tempDir(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    // O_RDWR: the open does not wait for a reader, and the pipe (64 KiB) fills as nobody reads.
    const fd = openSync(fifo, constants.O_RDWR);
    const maxPendingBytes = 256 << 10;
    const writer = new BatchedLogWriter(fd, { maxPendingBytes });
    const total = 20_000; // ~4.4 MB of lines, far past the pipe and the bound
    for (let i = 0; i < total; i++) {
      writer.write(line(i));
      if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(writer.droppedLines).toBeGreaterThan(total / 2);
    // Now a reader drains it: what was kept comes out, then the notice of what was not.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    let text = '';
    const buf = Buffer.alloc(1 << 16);
    const flushed = writer.flush();
    let done = false;
    void flushed.then(() => (done = true));
    const deadline = Date.now() + 10_000;
    // Read until the writer has flushed everything and the pipe is empty.
    for (;;) {
      const wasDone = done;
      try {
        const n = readSync(reader, buf);
        text += buf.subarray(0, n).toString('utf8');
        continue;
      } catch {
        // EAGAIN: nothing to read now
      }
      if (wasDone || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    closeSync(reader);
    closeSync(fd);
    const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { n?: number; dropped?: number; msg: string });
    const kept = lines.filter((l) => l.msg === 'request');
    // A notice each time the output caught up after drops, each with the drops since the last.
    const notices = lines.filter((l) => l.msg.startsWith('log lines dropped'));
    expect(done).toBe(true);
    expect(kept.length + writer.droppedLines).toBe(total);
    // Bounded: what was kept is what fits in the pipe and the pending bound, not everything.
    expect(kept.length * line(0).length).toBeLessThan(maxPendingBytes + (1 << 20));
    expect(notices.length).toBeGreaterThan(0);
    expect(notices.reduce((sum, l) => sum + l.dropped!, 0)).toBe(writer.droppedLines);
    // Kept lines keep their order.
    const ns = kept.map((l) => l.n!);
    expect([...ns].sort((a, b) => a - b)).toEqual(ns);
  });

  it('stops logging, without throwing, once the reader of its pipe is gone', async () => {
    const fifo = join(tempDir(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const fd = openSync(fifo, constants.O_WRONLY);
    closeSync(reader);
    const writer = new BatchedLogWriter(fd);
    writer.write(line(1));
    await writer.flush();
    expect(writer.droppedLines).toBe(1);
    writer.write(line(2)); // after EPIPE: ignored
    await writer.flush();
    writer.flushSync();
    closeSync(fd);
  });
});
