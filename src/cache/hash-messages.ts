// What the main thread and the hash thread (hash-thread.ts) say to each other.

export type HashRequest =
  | { readonly op: 'begin'; readonly id: number; readonly algorithm: string }
  /** Hash bytes [offset, offset + length) of buffer, which the writer leaves untouched until the answer. */
  | { readonly op: 'update'; readonly id: number; readonly seq: number; readonly buffer: SharedArrayBuffer; readonly offset: number; readonly length: number }
  | { readonly op: 'digest'; readonly id: number; readonly seq: number }
  | { readonly op: 'drop'; readonly id: number };

export interface HashReply {
  readonly seq: number;
  readonly error?: string;
  /** For digest: the hex of everything updated. */
  readonly hex?: string;
}
