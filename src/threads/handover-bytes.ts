// Counts what the main thread's internal listener writes back to hit threads, per answer: the
// figure that shows whether blob bodies still cross loopback (they should not for a fill a hit
// thread follows itself: http/fill-handover.ts).
import type { RequestListener } from 'node:http';
import type { Counter } from 'prom-client';
import { handedOverBytes } from '../http/fill-handover.ts';
import type { FileSender } from '../http/file-sender.ts';

/** files: the main thread's sender, whose sendfile(2) bytes pass the socket's count by. */
export function countHandoverBytes(listener: RequestListener, counter: Counter<'answer'>, files: Pick<FileSender, 'bytesSentPastNode'>): RequestListener {
  return (req, res) => {
    const socket = req.socket;
    // Answers on one connection go out one after another: the difference is this answer's.
    const before = socket.bytesWritten;
    res.once('close', () => {
      counter.inc({ answer: handedOverBytes(res) === undefined ? 'streamed' : 'followed' }, Math.max(0, socket.bytesWritten - before) + files.bytesSentPastNode(res));
    });
    listener(req, res);
  };
}
