// Bytes kept for long (an answer's encoded head, a log line's parts) in memory of their own:
// Buffer.from puts small strings in a shared 8 KiB pool slab, and one kept slice holds the whole
// slab, and whatever else was cut from it, alive.

export function ownBytes(text: string, encoding: 'utf8' | 'latin1' = 'utf8'): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text, encoding));
  bytes.write(text, 0, encoding);
  return bytes;
}
