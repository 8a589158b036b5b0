// How blob bytes reach the client's socket, from a cached blob or from a fill as it grows, read
// through the store's BlobReader. Where the store is a local file the kernel's sendfile(2)
// copies page-cache pages to the socket without passing them through JavaScript: about half the
// CPU per byte of the stream path, nginx's throughput, and no buffers per client
// (docs/benchmarks.md). Streams remain the fallback, and the way for a store without files.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { readRange, type BlobInfo, type BlobReader } from '../cache/blob-store.ts';
import type { ByteRange } from '../oci/range.ts';
import { drained, FillAbortedError, FillCursor, streamFill, type FillRange, type FollowedFill } from './follow-fill.ts';
import { loadSendfileAddon, type SendfileAddon } from './sendfile-addon.ts';

export interface FileSender {
  readonly method: 'sendfile' | 'stream';
  /**
   * Writes [range] of a blob to a response whose status and headers are set, then ends it.
   * Resolves when done or the client went away; a failure mid-body (a blob gone or shorter than
   * promised) cuts the connection, the only honest signal left once Content-Length went out.
   */
  send(res: ServerResponse, blob: BlobInfo, range: ByteRange): Promise<void>;
  /** The same for a blob still being filled: follows the temp file as verified bytes land. */
  sendFill(res: ServerResponse, fill: FollowedFill, range: FillRange): Promise<void>;
  /** Body bytes of this response that the kernel sent past Node (socket.bytesWritten misses them). */
  bytesSentPastNode(res: ServerResponse): number;
}

/** sendfile when wanted and the addon is built, else streams (with a warning saying why). */
export function chooseFileSender(useSendfile: boolean, logger: Logger): FileSender {
  if (!useSendfile) return streamFileSender();
  const addon = loadSendfileAddon();
  if (addon instanceof Error) {
    logger.warn({ reason: addon.message }, 'sendfile addon unavailable (npm run build:native builds it): cached blobs are streamed, at about twice the CPU per byte');
    return streamFileSender();
  }
  return sendfileFileSender(addon);
}

// 1 MiB reads: with the default 64 KiB, a read stream costs 3-4x the CPU per byte.
const CHUNK = 1 << 20;
const FOLLOW_BATCH = 1 << 20;

export function streamFileSender(): FileSender {
  return {
    method: 'stream',
    bytesSentPastNode: () => 0,
    sendFill: (res, fill, range) => streamFill(res, fill, range),
    async send(res, blob, range) {
      if (range.end < range.start) {
        res.end();
        return;
      }
      const reader = await blob.open().catch(() => undefined);
      if (!reader) {
        res.destroy(); // evicted between stat and open
        return;
      }
      try {
        await streamRange(res, reader, range);
      } finally {
        await reader.close().catch(() => undefined);
      }
    },
  };
}

/**
 * Writes [range] from a reader, a 1 MiB read at a time with backpressure, and ends the response;
 * a blob shorter than promised (truncated on disk) or a failed read cuts it instead, so the
 * client is not left waiting for the rest.
 */
async function streamRange(res: ServerResponse, reader: BlobReader, range: ByteRange): Promise<void> {
  let sent = 0;
  try {
    for await (const chunk of readRange(reader, range.start, range.end, CHUNK)) {
      if (res.destroyed) return;
      sent += chunk.length;
      if (!res.write(chunk)) await drained(res);
    }
    if (sent === range.end - range.start + 1) res.end();
    else res.destroy();
  } catch {
    res.destroy();
  }
}

export function sendfileFileSender(addon: SendfileAddon): FileSender {
  const streams = streamFileSender();
  const sentPastNode = new WeakMap<ServerResponse, number>();
  return {
    method: 'sendfile',
    bytesSentPastNode: (res) => sentPastNode.get(res) ?? 0,
    async sendFill(res, fill, range) {
      if (plainSocketFd(res.socket) === undefined) return streamFill(res, fill, range);
      const file = await fill.openReader().catch(() => undefined);
      if (!file) {
        res.destroy();
        return;
      }
      const fd = file.fd;
      if (fd === undefined) return streamFill(res, fill, range, file);
      let sent = 0;
      try {
        if (res.socket && res.socket.writableLength > 0) await drained(res.socket);
        const cursor = new FillCursor(fill, range);
        while (!cursor.finished) {
          if (res.destroyed) return;
          // After the first bytes, a batch at a time: each transfer has a fixed cost in native
          // handles, and a herd of followers would otherwise pay it per 64 KiB network read.
          const len = await cursor.ready(Infinity, cursor.position === range.start ? 1 : FOLLOW_BATCH);
          if (len === 0) continue;
          const step = await transfer(addon, res, fd, { start: cursor.position, end: cursor.position + len - 1 });
          sent += step.sent;
          cursor.advance(step.sent);
          if (!step.whole) throw new FillAbortedError('the client left or the socket failed');
        }
        res.end();
      } catch {
        res.destroy();
      } finally {
        sentPastNode.set(res, sent);
        await file.close().catch(() => undefined);
      }
    },
    async send(res, blob, range) {
      if (plainSocketFd(res.socket) === undefined || range.end < range.start) return streams.send(res, blob, range);
      const file = await blob.open().catch(() => undefined);
      if (!file) {
        res.destroy(); // evicted between stat and open
        return;
      }
      try {
        if (file.fd === undefined) return await streamRange(res, file, range);
        // The status line and headers go out through Node first; the kernel then appends the body.
        res.flushHeaders();
        if (res.socket && res.socket.writableLength > 0) await drained(res.socket);
        if (res.destroyed) return;
        const { whole, sent } = await transfer(addon, res, file.fd, range);
        sentPastNode.set(res, sent);
        if (whole) res.end();
        else res.destroy();
      } finally {
        await file.close().catch(() => undefined);
      }
    },
  };
}

/**
 * Whole when every byte went out; not when the transfer failed or the client left. The socket's
 * descriptor is read here, at the moment of the transfer, never kept across an await: a closed
 * socket's number is soon another connection's (a new client's, an upstream's), and bytes sent
 * to a stale number would land in that connection.
 */
function transfer(addon: SendfileAddon, res: ServerResponse, fileFd: number, range: ByteRange): Promise<{ whole: boolean; sent: number }> {
  const socketFd = res.destroyed ? undefined : plainSocketFd(res.socket);
  if (socketFd === undefined) return Promise.resolve({ whole: false, sent: 0 });
  return new Promise((resolve) => {
    const onClose = () => running.cancel();
    const running = addon.send(socketFd, fileFd, range.start, range.end - range.start + 1, (err, sent) => {
      res.off('close', onClose);
      resolve({ whole: err === null, sent });
    });
    res.on('close', onClose);
  });
}

/** The descriptor of a plain TCP socket; undefined for TLS (bytes must pass through OpenSSL) or a closed one. */
function plainSocketFd(socket: Socket | null): number | undefined {
  if (!socket || socket.destroyed || 'encrypted' in socket) return undefined;
  // libuv's handle holds the descriptor; Node exposes it only on this internal field.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
