import { describe, expect, it } from 'vitest';
import { TagPageParser, TagPageSyntaxError } from '../../src/proxy/tag-page-parser.ts';

/** The tags of a page fed in the given pieces, or the parser's error message. */
function parse(pieces: Array<string | Buffer>): string[] | string {
  const tags: string[] = [];
  const parser = new TagPageParser((t) => tags.push(t));
  try {
    for (const piece of pieces) parser.write(typeof piece === 'string' ? Buffer.from(piece) : piece);
    parser.end();
    return tags;
  } catch (err) {
    if (err instanceof TagPageSyntaxError) return err.message;
    throw err;
  }
}

/** Every way of cutting the page in two, and byte by byte: all must read the same. */
function parseEverySplit(page: string): string[] | string {
  const bytes = Buffer.from(page);
  const whole = parse([bytes]);
  for (let at = 0; at <= bytes.length; at++) expect(parse([bytes.subarray(0, at), bytes.subarray(at)]), `split at ${at}`).toEqual(whole);
  expect(parse([...bytes].map((b) => Buffer.from([b])))).toEqual(whole);
  return whole;
}

describe('tag page parser', () => {
  it('reads the tags of a page, whatever the chunk boundaries', () => {
    expect(parseEverySplit('{"name":"library/alpine","tags":["3.20","latest","edge"]}')).toEqual(['3.20', 'latest', 'edge']);
  });

  it('takes any key order, whitespace and other keys of any shape', () => {
    const page = ' {\n "tags" : [ "a" , "b" ],\t"name": "x", "extra": {"tags": ["not", "these"], "n": [1, -2.5e3, true, false, null, {"a": []}]}, "z": "q\\"}" }\r\n';
    expect(parseEverySplit(page)).toEqual(['a', 'b']);
  });

  it('decodes escapes and UTF-8 as JSON.parse does', () => {
    const page = JSON.stringify({ name: 'x', tags: ['a"b', 'back\\slash', 'tab\t', 'é', '\u{1F600}', 'x\u0001y'] }).replace('é', '\\u00e9');
    expect(parseEverySplit(page)).toEqual(['a"b', 'back\\slash', 'tab\t', 'é', '\u{1F600}', 'x\u0001y']);
  });

  it('reads "tags": null, an empty list and no "tags" key as no tags', () => {
    expect(parseEverySplit('{"name":"x","tags":null}')).toEqual([]);
    expect(parseEverySplit('{"name":"x","tags":[]}')).toEqual([]);
    expect(parseEverySplit('{"name":"x"}')).toEqual([]);
    expect(parseEverySplit('{}')).toEqual([]);
  });

  it('does not take a long key that begins with "tags" for "tags"', () => {
    expect(parseEverySplit(`{"tags${'x'.repeat(100)}":["no"],"tags":["yes"]}`)).toEqual(['yes']);
  });

  it('refuses what is not JSON', () => {
    for (const page of ['', '{', '{"tags":["a"]', '{"tags":["a",]}', '{"tags":["a"]}x', '{"tags":["a\nb"]}', '{"tags":["\\x"]}', '{"tags":["\\u12g4"]}', '{"a":tru}', '{"a":01}', '{"a" 1}', "{'tags':[]}", '{"a":1,}']) {
      expect(parseEverySplit(page), page).toBe('tag list is not JSON');
    }
  });

  it('refuses JSON that is not a tag list', () => {
    for (const page of ['[]', '"tags"', '{"tags":"a"}', '{"tags":{"a":1}}', '{"tags":[1]}', '{"tags":["a",["b"]]}', '{"tags":true}', '{"tags":["a",null]}']) {
      expect(parseEverySplit(page), page).toBe('tag list has no tags array');
    }
  });

  it('lets what the callback throws end the parse', () => {
    const parser = new TagPageParser((t) => {
      if (t === 'stop') throw new Error('limit');
    });
    expect(() => parser.write(Buffer.from('{"tags":["a","stop","b"]}'))).toThrow('limit');
  });
});
