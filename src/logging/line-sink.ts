// A log destination a line can be encoded straight into: the access log writes its line's bytes
// into the destination's own chunk instead of building a string the destination then encodes
// (at tens of thousands of lines a second, that string and its flattened copy were a third of a
// cached manifest's garbage; docs/benchmarks.md).
import type { DestinationStream } from 'pino';

export interface LineSink {
  /**
   * Room for one line of at most maxBytes, in `lineBuffer` from the offset returned; -1 when the
   * line is to be dropped (the sink counts it). Nothing else may write before commitLine.
   */
  reserveLine(maxBytes: number): number;
  /** Where the reserved line goes. */
  readonly lineBuffer: Buffer;
  /** The reserved line ends at `end` (exclusive, its newline written). */
  commitLine(end: number): void;
}

export function isLineSink(stream: DestinationStream): stream is DestinationStream & LineSink {
  return typeof (stream as Partial<LineSink>).reserveLine === 'function';
}
