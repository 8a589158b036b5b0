// JSON text with one long array of strings in it (a tag list), made in pieces: a list of
// 100 000 tags is about 13 MB of JSON, which should never be one string or one buffer.

export const PIECE_CHARS = 64 * 1024;

/** head, then items as the elements of a JSON array, then tail: in pieces of about 64 K characters. */
export function* jsonArrayPieces(head: string, items: readonly string[], tail: string): Generator<string> {
  let piece = head;
  for (let i = 0; i < items.length; i++) {
    piece += (i === 0 ? '' : ',') + JSON.stringify(items[i]);
    if (piece.length >= PIECE_CHARS) {
      yield piece;
      piece = '';
    }
  }
  yield piece + tail;
}
