// A positioned write of every byte of a chunk: a file handle may write fewer bytes than asked
// (a short write), and a blob file must get them all before readers are told they are there.
import type { FileHandle } from 'node:fs/promises';

export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) {
    offset += (await handle.write(bytes, offset, bytes.byteLength - offset, position + offset)).bytesWritten;
  }
}
