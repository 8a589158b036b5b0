// The JSON body of a tag list answer, {"name":...,"tags":[...]}, for lists of any length: a list
// of 100 000 tags is about 13 MB of JSON, so a long one goes out in pieces of about 64 KiB and
// is never one string or one buffer (it would be one per request, until the next major GC).
import { jsonArrayPieces, PIECE_CHARS } from '../json-pieces.ts';

export interface TagListBody {
  /** The whole body as one string when it is short, else undefined (use stream()). */
  readonly text: string | undefined;
  readonly byteLength: number;
  stream(): ReadableStream<Uint8Array>;
}

export function tagListBody(name: string, tags: readonly string[]): TagListBody {
  const head = `{"name":${JSON.stringify(name)},"tags":[`;
  let byteLength = Buffer.byteLength(head) + 2;
  let chars = head.length + 2;
  for (let i = 0; i < tags.length; i++) {
    const tag = JSON.stringify(tags[i]);
    chars += tag.length + (i === 0 ? 0 : 1);
    byteLength += Buffer.byteLength(tag) + (i === 0 ? 0 : 1);
  }
  const text = chars <= PIECE_CHARS ? JSON.stringify({ name, tags }) : undefined;
  return { text, byteLength, stream: () => pieceStream(head, tags) };
}

function pieceStream(head: string, tags: readonly string[]): ReadableStream<Uint8Array> {
  const pieces = jsonArrayPieces(head, tags, ']}');
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = pieces.next();
      if (next.done) controller.close();
      else controller.enqueue(Buffer.from(next.value));
    },
  });
}
