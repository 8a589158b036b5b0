// The hash thread's side (a worker started by hash-offload.ts): one hash per blob being
// written, updated from the writer's shared buffer while the main thread receives the next
// bytes and the thread pool writes these. It reads shared memory and answers; it owns nothing.
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import type { HashReply, HashRequest } from './hash-messages.ts';

function serve(port: NonNullable<typeof parentPort>): void {
  const hashes = new Map<number, Hash | Error>();
  const reply = (message: HashReply) => port.postMessage(message);
  port.on('message', (m: HashRequest) => {
    if (m.op === 'begin') {
      try {
        hashes.set(m.id, createHash(m.algorithm));
      } catch (err) {
        hashes.set(m.id, err instanceof Error ? err : new Error(String(err)));
      }
      return;
    }
    if (m.op === 'drop') {
      hashes.delete(m.id);
      return;
    }
    const hash = hashes.get(m.id);
    if (!(hash && !(hash instanceof Error))) {
      reply({ seq: m.seq, error: hash?.message ?? `no hash ${m.id} in this thread` });
      return;
    }
    if (m.op === 'update') {
      hash.update(new Uint8Array(m.buffer, m.offset, m.length));
      reply({ seq: m.seq });
    } else {
      hashes.delete(m.id);
      reply({ seq: m.seq, hex: hash.digest('hex') });
    }
  });
}

if (parentPort) serve(parentPort);
