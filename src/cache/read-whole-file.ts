// A whole file read with the fewest thread-pool round trips, for the manifest store's small files
// (tag records, manifests): open, one read, close. fs/promises' readFile adds an fstat and a
// FileHandle (with its promise plumbing and its collection later) to each; under random pulls
// over 10 000 tags that cost the main thread more than the rest of the answer (bench:scale,
// docs/benchmarks.md). The store's files are written once and renamed into place, so a read
// shorter than its buffer is the whole file; one that fills the buffer is read again whole.
import { close, open, read, readFile } from 'node:fs';

/** Enough for a tag record or a typical manifest in one read. */
const FIRST_READ_BYTES = 16 << 10;

export function readWholeFile(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (openErr, fd) => {
      if (openErr) {
        reject(openErr);
        return;
      }
      const buffer = Buffer.allocUnsafe(FIRST_READ_BYTES);
      read(fd, buffer, 0, FIRST_READ_BYTES, 0, (readErr, bytesRead) => {
        close(fd, (closeErr) => {
          if (readErr || closeErr) reject(readErr ?? closeErr);
          else if (bytesRead < FIRST_READ_BYTES) resolve(buffer.subarray(0, bytesRead));
          // Larger (a long tag list): read whole, the ordinary way.
          else readFile(path, (err, whole) => (err ? reject(err) : resolve(whole)));
        });
      });
    });
  });
}
