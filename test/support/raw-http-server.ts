// An HTTP server written on raw TCP, for upstreams that break HTTP itself: lying lengths, bad
// chunking, header injection, garbage status lines, resets mid-body, slow drips. It reads a
// request head, asks the handler what to send, writes exactly those bytes and closes (or
// resets, or keeps silent for a while). Listens on 127.0.0.1 only and records every request.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface RawRequest {
  readonly method: string;
  readonly path: string;
  /** Lowercased names; the last value wins. */
  readonly headers: Readonly<Record<string, string>>;
}

/** Bytes to send, with pauses; then how the connection ends. */
export interface RawReply {
  readonly parts: ReadonlyArray<Buffer | { readonly waitMs: number }>;
  readonly end?: 'close' | 'reset';
}

export type RawHandler = (req: RawRequest) => RawReply;

export interface RawHttpServer {
  readonly port: number;
  readonly url: string;
  readonly requests: RawRequest[];
  handle(handler: RawHandler): void;
  stop(): Promise<void>;
}

const MAX_HEAD_BYTES = 64 * 1024;

export async function startRawHttpServer(handler: RawHandler): Promise<RawHttpServer> {
  let current = handler;
  const requests: RawRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > MAX_HEAD_BYTES) socket.destroy();
        return;
      }
      socket.off('data', onData);
      socket.on('data', () => undefined); // requests carry no body; ignore pipelined extras
      const req = parseHead(head.subarray(0, end).toString('latin1'));
      requests.push(req);
      void send(socket, current(req));
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    handle(next) {
      current = next;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function send(socket: Socket, reply: RawReply): Promise<void> {
  for (const part of reply.parts) {
    if (socket.destroyed) return;
    if (Buffer.isBuffer(part)) socket.write(part);
    else await new Promise((r) => setTimeout(r, part.waitMs));
  }
  if (reply.end === 'reset') socket.resetAndDestroy();
  else socket.end();
}

function parseHead(text: string): RawRequest {
  const [line = '', ...fields] = text.split('\r\n');
  const [method = '', path = ''] = line.split(' ');
  const headers: Record<string, string> = {};
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon > 0) headers[field.slice(0, colon).trim().toLowerCase()] = field.slice(colon + 1).trim();
  }
  return { method, path, headers };
}

/** A well-formed HTTP/1.1 answer (Connection: close) as bytes; headers are written verbatim. */
export function httpBytes(status: number | string, headers: ReadonlyArray<readonly [string, string]>, body: Buffer | string = '', opts: { contentLength?: number | false; method?: string } = {}): Buffer {
  const bytes = Buffer.from(body);
  const lines = [`HTTP/1.1 ${typeof status === 'number' ? `${status} X` : status}`, 'Connection: close', ...headers.map(([k, v]) => `${k}: ${v}`)];
  if (opts.contentLength !== false) lines.push(`Content-Length: ${opts.contentLength ?? bytes.length}`);
  const headBytes = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return opts.method === 'HEAD' ? headBytes : Buffer.concat([headBytes, bytes]);
}
