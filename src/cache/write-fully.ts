// A positioned write of every byte of a chunk (or of chunks in order): a file handle may write
// fewer bytes than asked (a short write), and a blob file must get them all before readers are
// told they are there.
import type { FileHandle } from 'node:fs/promises';

export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) {
    offset += (await handle.write(bytes, offset, bytes.byteLength - offset, position + offset)).bytesWritten;
  }
}

/** The chunks one after the other from position, in one writev when the kernel takes them all. */
export async function writevFully(handle: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void> {
  if (chunks.length === 1) return writeFully(handle, chunks[0]!, position);
  const total = chunks.reduce((sum, c) => sum + c.byteLength, 0);
  let done = (await handle.writev(chunks as Uint8Array[], position)).bytesWritten;
  // A short writev: the rest chunk by chunk, from where it stopped.
  for (let i = 0, start = 0; done < total && i < chunks.length; start += chunks[i]!.byteLength, i++) {
    const end = start + chunks[i]!.byteLength;
    if (end <= done) continue;
    const rest = chunks[i]!.subarray(done - start);
    await writeFully(handle, rest, position + done);
    done += rest.byteLength;
  }
}
