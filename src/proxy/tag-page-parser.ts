// Reads one upstream tag list page, {"name": "...", "tags": ["...", ...]}, as its bytes arrive:
// each tag is handed to the caller as soon as its closing quote is read, so a page is never
// held whole (a hostile upstream may send megabytes per page). Other keys, at any depth, are
// checked as JSON and skipped. A page with "tags": null or without "tags" has no tags.
import { Buffer } from 'node:buffer';

/** The page is not JSON, or not a tag list. */
export class TagPageSyntaxError extends Error {}

const NOT_JSON = 'tag list is not JSON';
const NO_TAGS_ARRAY = 'tag list has no tags array';

// What the next byte may be (outside strings and literals).
const VALUE = 0; // a value
const VALUE_OR_CLOSE = 1; // just after '[': a value or ']'
const KEY_OR_CLOSE = 2; // just after '{': a key or '}'
const KEY = 3; // after ',' in an object
const COLON = 4;
const AFTER_VALUE = 5; // ',' or the container's close
const DONE = 6; // the top-level object has ended: only whitespace
const STRING = 7;
const STRING_ESCAPE = 8; // after '\' in a string
const LITERAL = 9; // true, false, null or a number

// Containers on the stack.
const OBJECT = 0;
const ARRAY = 1;
const TAGS_ARRAY = 2;

// What a string being read is for.
const SKIP = 0;
const TOP_KEY = 1; // a key of the top-level object: is it "tags"?
const TAG = 2;

/** Keys of the top-level object are kept only this far: "tags" is shorter, even escaped. */
const MAX_KEY_BYTES = 64;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ESCAPABLE = new Set([...'"\\/bfnrtu'].map((c) => c.charCodeAt(0)));
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

export class TagPageParser {
  readonly #onTag: (tag: string) => void;
  #state = VALUE;
  readonly #stack: number[] = [];
  /** The next value is that of the top-level "tags" key. */
  #tagsValueNext = false;
  #stringRole = SKIP;
  #stringIsKey = false;
  #stringEscaped = false;
  /** A top-level key longer than MAX_KEY_BYTES: not "tags". */
  #keyTooLong = false;
  #hexLeft = 0;
  #scratch = Buffer.allocUnsafe(256);
  #scratchLength = 0;
  #literal = '';
  /** The literal being read is the value of "tags": only null is allowed. */
  #literalMustBeNull = false;

  constructor(onTag: (tag: string) => void) {
    this.#onTag = onTag;
  }

  /** Reads the next bytes of the page; throws TagPageSyntaxError, or what onTag throws. */
  write(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      const state = this.#state;
      if (state === STRING) {
        i = this.#readString(chunk, i);
        continue;
      }
      const b = chunk[i]!;
      if (state === STRING_ESCAPE) {
        if (this.#hexLeft > 0) {
          if (!isHex(b)) throw new TagPageSyntaxError(NOT_JSON);
          this.#hexLeft--;
        } else {
          if (!ESCAPABLE.has(b)) throw new TagPageSyntaxError(NOT_JSON);
          if (b === 0x75) this.#hexLeft = 4; // \uXXXX
        }
        this.#keep(chunk, i, i + 1);
        i++;
        if (this.#hexLeft === 0) this.#state = STRING;
        continue;
      }
      if (state === LITERAL) {
        if (isLiteralByte(b)) {
          this.#literal += String.fromCharCode(b);
          i++;
          continue;
        }
        this.#endLiteral(); // b is read again after the literal
        continue;
      }
      i++;
      if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) continue;
      this.#structural(b);
    }
  }

  /** The page has ended: throws unless it was one whole JSON object. */
  end(): void {
    if (this.#state === LITERAL) this.#endLiteral();
    if (this.#state !== DONE) throw new TagPageSyntaxError(NOT_JSON);
  }

  #structural(b: number): void {
    switch (this.#state) {
      case VALUE_OR_CLOSE:
        if (b === 0x5d) return this.#close(ARRAY);
        return this.#value(b);
      case VALUE:
        return this.#value(b);
      case KEY_OR_CLOSE:
        if (b === 0x7d) return this.#close(OBJECT);
      // falls through: a key
      case KEY:
        if (b !== QUOTE) throw new TagPageSyntaxError(NOT_JSON);
        return this.#startString(this.#stack.length === 1 ? TOP_KEY : SKIP, true);
      case COLON:
        if (b !== 0x3a) throw new TagPageSyntaxError(NOT_JSON);
        this.#state = VALUE;
        return;
      case AFTER_VALUE: {
        const top = this.#stack.at(-1);
        if (b === 0x2c) {
          this.#state = top === OBJECT ? KEY : VALUE;
          return;
        }
        return this.#close(top === OBJECT ? OBJECT : ARRAY, b);
      }
      default: // DONE: nothing but whitespace may follow
        throw new TagPageSyntaxError(NOT_JSON);
    }
  }

  #value(b: number): void {
    const depth = this.#stack.length;
    const tagsValue = this.#tagsValueNext;
    this.#tagsValueNext = false;
    if (depth === 0 && b !== 0x7b) throw new TagPageSyntaxError(this.#seemsJson(b) ? NO_TAGS_ARRAY : NOT_JSON);
    const inTags = this.#stack.at(-1) === TAGS_ARRAY;
    if (inTags && b !== QUOTE) throw new TagPageSyntaxError(this.#seemsJson(b) ? NO_TAGS_ARRAY : NOT_JSON);
    if (tagsValue && b !== 0x5b && b !== 0x6e) throw new TagPageSyntaxError(this.#seemsJson(b) ? NO_TAGS_ARRAY : NOT_JSON);
    if (b === 0x7b) {
      this.#stack.push(OBJECT);
      this.#state = KEY_OR_CLOSE;
    } else if (b === 0x5b) {
      this.#stack.push(tagsValue ? TAGS_ARRAY : ARRAY);
      this.#state = VALUE_OR_CLOSE;
    } else if (b === QUOTE) {
      this.#startString(inTags ? TAG : SKIP, false);
    } else if (isLiteralByte(b)) {
      this.#literal = String.fromCharCode(b);
      this.#state = LITERAL;
      // "tags": null is a repository without tags; any other literal is no tags array.
      if (tagsValue) this.#literalMustBeNull = true;
    } else {
      throw new TagPageSyntaxError(NOT_JSON);
    }
  }

  #endLiteral(): void {
    const text = this.#literal;
    this.#literal = '';
    if (text !== 'true' && text !== 'false' && text !== 'null' && !NUMBER.test(text)) throw new TagPageSyntaxError(NOT_JSON);
    if (this.#literalMustBeNull && text !== 'null') throw new TagPageSyntaxError(NO_TAGS_ARRAY);
    this.#literalMustBeNull = false;
    this.#state = AFTER_VALUE;
  }

  /** Ends a container on its closing byte (b), or throws if b is not that byte. */
  #close(kind: number, b: number = kind === OBJECT ? 0x7d : 0x5d): void {
    if (b !== (kind === OBJECT ? 0x7d : 0x5d)) throw new TagPageSyntaxError(NOT_JSON);
    this.#stack.pop();
    this.#state = this.#stack.length === 0 ? DONE : AFTER_VALUE;
  }

  #startString(role: number, isKey: boolean): void {
    this.#stringRole = role;
    this.#stringIsKey = isKey;
    this.#stringEscaped = false;
    this.#keyTooLong = false;
    this.#scratchLength = 0;
    this.#state = STRING;
  }

  /** Reads string bytes from i up to its end or the chunk's; returns where to go on. */
  #readString(chunk: Uint8Array, i: number): number {
    const n = chunk.length;
    let j = i;
    while (j < n) {
      const b = chunk[j]!;
      if (b === QUOTE || b === BACKSLASH) break;
      if (b < 0x20) throw new TagPageSyntaxError(NOT_JSON);
      j++;
    }
    this.#keep(chunk, i, j);
    if (j === n) return j;
    if (chunk[j] === BACKSLASH) {
      this.#stringEscaped = true;
      this.#keep(chunk, j, j + 1);
      this.#state = STRING_ESCAPE;
      return j + 1;
    }
    this.#endString();
    return j + 1;
  }

  #keep(chunk: Uint8Array, from: number, to: number): void {
    const role = this.#stringRole;
    if (role === SKIP || from === to) return;
    const length = this.#scratchLength + (to - from);
    if (role === TOP_KEY && length > MAX_KEY_BYTES) {
      this.#keyTooLong = true; // not "tags"; its end is still found
      return;
    }
    if (length > this.#scratch.length) {
      const grown = Buffer.allocUnsafe(Math.max(length, this.#scratch.length * 2));
      this.#scratch.copy(grown, 0, 0, this.#scratchLength);
      this.#scratch = grown;
    }
    this.#scratch.set(chunk.subarray(from, to), this.#scratchLength);
    this.#scratchLength = length;
  }

  #endString(): void {
    const role = this.#stringRole;
    this.#state = this.#stringIsKey ? COLON : AFTER_VALUE;
    if (role === SKIP) return;
    if (role === TOP_KEY && this.#keyTooLong) {
      this.#tagsValueNext = false;
      return;
    }
    // A fresh string (not a view of the page): keeping a tag keeps only its own bytes.
    const raw = this.#scratch.toString('utf8', 0, this.#scratchLength);
    let text = raw;
    if (this.#stringEscaped) {
      try {
        text = JSON.parse(`"${raw}"`) as string;
      } catch {
        throw new TagPageSyntaxError(NOT_JSON);
      }
    }
    if (this.#scratch.length > 64 * 1024) this.#scratch = Buffer.allocUnsafe(256); // do not keep a huge one
    if (role === TOP_KEY) {
      this.#tagsValueNext = text === 'tags';
      return;
    }
    this.#onTag(text);
  }

  #seemsJson(b: number): boolean {
    return b === 0x7b || b === 0x5b || b === QUOTE || isLiteralByte(b);
  }
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

/** Bytes of true, false, null and numbers. */
function isLiteralByte(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2b || b === 0x2e || b === 0x45;
}
