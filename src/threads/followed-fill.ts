// A hit thread's side of a fill handed over by the main thread (http/fill-handover.ts): the
// answer's body is not the blob but the fill's progress, and the hit thread sends the blob itself
// from the fill's file with its own FileSender (sendfile: no JavaScript buffer per byte, where
// the loopback body cost two). The progress lines become a view with what FillCursor reads, so
// the last byte still goes only once the main thread saw the digest verified; a cut or a lie on
// the loopback hop fails the view, which cuts the client, as a failed fill does.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlobReader, BlobStore } from '../cache/blob-store.ts';
import type { FileSender } from '../http/file-sender.ts';
import { FILL_END, FILL_HANDOVER_HEADERS } from '../http/fill-handover.ts';
import type { FollowedFill } from '../http/follow-fill.ts';
import { FillSignal, type FillState } from '../proxy/fill-signal.ts';

// A progress line is a number or `end <number>`: anything longer is not one.
const MAX_LINE = 40;
const COUNT = /^(0|[1-9][0-9]{0,15})$/;

export class HandoverBrokenError extends Error {}

/** A fill the main thread runs, as its progress lines tell. */
export class FillView implements FollowedFill {
  readonly size: number;
  readonly openReader: () => Promise<BlobReader>;
  #readable = 0;
  readonly #signal = new FillSignal();

  constructor(size: number, openReader: () => Promise<BlobReader>) {
    this.size = size;
    this.openReader = openReader;
  }

  get state(): FillState {
    return this.#signal.state;
  }

  get error(): Error | undefined {
    return this.#signal.error;
  }

  get ended(): boolean {
    return this.#signal.state === 'complete';
  }

  get readable(): number {
    return this.#readable;
  }

  /** Only read once ended (FillCursor): then every byte is readable. */
  get written(): number {
    return this.#readable;
  }

  changed(): Promise<void> {
    return this.#signal.changed();
  }

  /** One progress line; false when it is not one the main thread could have sent. */
  line(text: string): boolean {
    if (this.#signal.state !== 'filling') return false;
    const ending = text.startsWith(FILL_END);
    const figure = ending ? text.slice(FILL_END.length) : text;
    if (!COUNT.test(figure)) return false;
    const count = Number(figure);
    // Bytes only grow; before the end, the last byte is held back until verified.
    if (count < this.#readable || (ending ? count !== this.size : count > Math.max(0, this.size - 1))) return false;
    this.#readable = count;
    if (ending) this.#signal.complete();
    else this.#signal.notify();
    return true;
  }

  fail(error: Error): void {
    this.#signal.fail(error);
  }
}

export interface FillFollowing {
  readonly files: FileSender;
  readonly store: BlobStore;
  /** The blob asked for, as this thread parsed it from the request: the only one it opens. */
  readonly digest: string;
}

/** Whether the main thread's answer is a handover (else it is the blob itself, to pipe on). */
export function isHandover(answer: IncomingMessage): boolean {
  return answer.headers[FILL_HANDOVER_HEADERS.file] !== undefined;
}

/**
 * Answers the client from a handed-over fill: the main thread's head with the blob's length
 * restored and the internal headers gone, then the blob from the fill's file as progress allows.
 * rawHeaders: the answer's end-to-end headers, as the forwarder keeps them.
 */
export function sendFollowedFill(answer: IncomingMessage, res: ServerResponse, rawHeaders: readonly string[], following: FillFollowing): void {
  const name = answer.headers[FILL_HANDOVER_HEADERS.file];
  const lengthText = answer.headers[FILL_HANDOVER_HEADERS.length];
  const openFilling = following.store.openFilling;
  // The client left while the main thread answered: hang up, so that it stops and logs the cut.
  if (res.destroyed) {
    answer.destroy();
    return;
  }
  if (typeof name !== 'string' || typeof lengthText !== 'string' || !COUNT.test(lengthText) || !openFilling) {
    // Not an answer the main thread gives: nothing of it reaches the client.
    answer.destroy();
    res.destroy();
    return;
  }
  const size = Number(lengthText);
  const headers: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase();
    if (lower === FILL_HANDOVER_HEADERS.file || lower === FILL_HANDOVER_HEADERS.length || lower === 'content-length') continue;
    headers.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  headers.push('Content-Length', lengthText);
  const fill = new FillView(size, async () => {
    // The temp file, or the committed blob once the main thread renamed it into place.
    const reader = await openFilling.call(following.store, following.digest, name);
    if (!reader) throw new HandoverBrokenError('the fill file is gone');
    return reader;
  });
  followProgress(answer, fill);
  // The client left: the main thread stops reporting and logs the request as cut.
  res.once('close', () => {
    if (!answer.complete) answer.destroy();
  });
  res.writeHead(answer.statusCode ?? 502, headers);
  res.flushHeaders();
  void following.files.sendFill(res, fill, { start: 0, end: undefined });
}

/** Feeds the answer's lines to the view; a bad line, a cut or an end before `end` fails it. */
function followProgress(answer: IncomingMessage, fill: FillView): void {
  let pending = '';
  const broken = (why: string) => {
    fill.fail(new HandoverBrokenError(why));
    answer.destroy();
  };
  answer.setEncoding('latin1');
  answer.on('data', (chunk: string) => {
    pending += chunk;
    for (let at = pending.indexOf('\n'); at >= 0; at = pending.indexOf('\n')) {
      if (!fill.line(pending.slice(0, at))) return broken('not a progress line');
      pending = pending.slice(at + 1);
    }
    if (pending.length > MAX_LINE) broken('not a progress line');
  });
  answer.on('error', () => undefined); // 'close' below says it
  answer.once('close', () => {
    if (!fill.ended) broken('the main thread cut the fill');
  });
}
