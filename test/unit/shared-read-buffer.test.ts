// Accepted sockets switched to reading into one shared buffer: the bytes come to the callback,
// not to 'data'; false from the callback stops reading until the socket is resumed; after
// detach the reads are 'data' again, copied out. Real sockets on loopback.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedReadBuffer } from '../../src/http/shared-read-buffer.ts';

const servers: Server[] = [];
const clients: Socket[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
  for (const s of servers.splice(0)) s.close();
});

/** A server whose first accepted socket is handed to `adopt`, and a client connected to it. */
async function pair(adopt: (socket: Socket) => void): Promise<Socket> {
  const server = createServer(adopt);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const client = connect(port, '127.0.0.1');
  clients.push(client);
  await new Promise((resolve) => client.once('connect', resolve));
  return client;
}

const until = async (done: () => boolean) => {
  const deadline = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('SharedReadBuffer', () => {
  it('delivers each read to the callback, in the one buffer every socket shares, and none to data', async () => {
    const reads = new SharedReadBuffer();
    const got: string[] = [];
    const buffers = new Set<ArrayBufferLike>();
    let dataEvents = 0;
    const attached: boolean[] = [];
    const adopt = (socket: Socket) => {
      socket.on('data', () => dataEvents++);
      attached.push(
        reads.attach(socket, (bytes) => {
          buffers.add(bytes.buffer);
          got.push(bytes.toString());
          return true;
        }),
      );
    };
    const a = await pair(adopt);
    const b = await pair(adopt);
    a.write('one');
    await until(() => got.length === 1);
    b.write('two');
    await until(() => got.length === 2);
    expect(attached).toEqual([true, true]);
    expect(got).toEqual(['one', 'two']);
    expect(buffers.size).toBe(1);
    expect(dataEvents).toBe(0);
  });

  it('stops reading when the callback says false, until the socket is resumed', async () => {
    const reads = new SharedReadBuffer();
    const got: string[] = [];
    let server: Socket | undefined;
    const client = await pair((socket) => {
      server = socket;
      reads.attach(socket, (bytes) => {
        got.push(bytes.toString());
        return false;
      });
    });
    client.write('first');
    await until(() => got.length === 1);
    client.write('second');
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual(['first']);
    server!.resume();
    await until(() => got.length === 2);
    expect(got).toEqual(['first', 'second']);
  });

  it('after detach, reads come to data again as bytes of their own', async () => {
    const reads = new SharedReadBuffer();
    const viaCallback: string[] = [];
    const viaData: Buffer[] = [];
    let server: Socket | undefined;
    const client = await pair((socket) => {
      server = socket;
      reads.attach(socket, (bytes) => {
        viaCallback.push(bytes.toString());
        return true;
      });
      socket.on('data', (chunk: Buffer) => viaData.push(chunk));
    });
    client.write('before');
    await until(() => viaCallback.length === 1);
    reads.detach(server!);
    client.write('after');
    await until(() => viaData.length === 1);
    // Another socket's read lands in the shared buffer; the detached socket's bytes stay.
    const other = await pair((socket) => void reads.attach(socket, () => true));
    other.write('XXXXX');
    await new Promise((r) => setTimeout(r, 50));
    expect(viaCallback).toEqual(['before']);
    expect(viaData.map((b) => b.toString())).toEqual(['after']);
  });

  it('ends the socket as Node does when the client ends', async () => {
    const reads = new SharedReadBuffer();
    let ended = false;
    const client = await pair((socket) => {
      reads.attach(socket, () => true);
      socket.on('end', () => {
        ended = true;
        socket.end();
      });
    });
    client.end('bye');
    await until(() => ended);
  });
});
