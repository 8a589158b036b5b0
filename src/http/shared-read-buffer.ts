// Reads of the connections the fast path holds, into one buffer shared by all of them. Node's
// own reads allocate a 64 KiB buffer per read, shrink it to what came and leave it to the
// collector: malloc, realloc, free and the backing store's bookkeeping were ~6 % of a cached
// manifest's CPU (docs/benchmarks.md). Node reads into a caller's buffer for sockets made with
// `onread` (net.connect); an accepted socket is switched to it the same way, through the
// handle's useUserBuffer and the socket's own onread fields. Every read is handled before the
// next one lands: what a reader keeps past its call (the start of a head, a hand-over's bytes)
// it copies. Where this Node has no such fields, sockets read as usual (attach returns false).
import { Socket } from 'node:net';

interface OnreadFields {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly generator: symbol;
}

const READ_BUFFER_BYTES = 64 << 10;

/** The symbols net.Socket keeps its onread buffer and callback under (found on a socket made with them). */
function findOnreadFields(): OnreadFields | undefined {
  const buffer = Buffer.alloc(1);
  const callback = () => true;
  const probe = new Socket({ onread: { buffer, callback } });
  const symbols = Object.getOwnPropertySymbols(probe);
  const at = (value: unknown) => symbols.find((s) => (probe as unknown as Record<symbol, unknown>)[s] === value);
  const bufferSymbol = at(buffer);
  const callbackSymbol = at(callback);
  const generatorSymbol = symbols.find((s) => s.description === 'kBufferGen');
  probe.destroy();
  if (!bufferSymbol || !callbackSymbol || !generatorSymbol) return undefined;
  return { buffer: bufferSymbol, callback: callbackSymbol, generator: generatorSymbol };
}

type ReadHandle = { useUserBuffer?: (buffer: Uint8Array) => void };

export class SharedReadBuffer {
  readonly #fields = findOnreadFields();
  readonly #buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);

  /**
   * From now on the socket's reads land in the shared buffer and go to onBytes (valid only during
   * the call; false pauses reading until the socket is resumed), not to 'data'. False when this
   * Node cannot.
   */
  attach(socket: Socket, onBytes: (bytes: Buffer) => boolean): boolean {
    const fields = this.#fields;
    const handle = (socket as unknown as { _handle?: ReadHandle })._handle;
    if (!fields || typeof handle?.useUserBuffer !== 'function') return false;
    handle.useUserBuffer(this.#buffer);
    const own = socket as unknown as Record<symbol, unknown>;
    own[fields.buffer] = this.#buffer;
    own[fields.generator] = null;
    own[fields.callback] = (nread: number, buffer: Buffer) => onBytes(buffer.subarray(0, nread));
    return true;
  }

  /**
   * After a hand-over: the socket's reads go to 'data' again, copied out of the shared buffer
   * (Node's HTTP parser reads the handle itself; this covers any read that still comes here).
   */
  detach(socket: Socket): void {
    const fields = this.#fields!;
    (socket as unknown as Record<symbol, unknown>)[fields.callback] = (nread: number, buffer: Buffer) => socket.push(Buffer.from(buffer.subarray(0, nread)));
  }
}
