// readWholeFile: every byte of a file, whatever its size against the first read's buffer (empty,
// under it, exactly it, past it), and a missing file's ENOENT as fs gives it.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWholeFile } from '../../src/cache/read-whole-file.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

describe('readWholeFile', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await makeTempDir('wharf-read-whole-');
  });
  afterAll(async () => dir.cleanup());

  it.each([0, 1, 300, (16 << 10) - 1, 16 << 10, (16 << 10) + 1, 3 << 20])('reads all %i bytes', async (size) => {
    const bytes = randomBytes(size);
    const path = join(dir.path, `f${size}`);
    await writeFile(path, bytes);
    expect((await readWholeFile(path)).equals(bytes)).toBe(true);
  });

  it('rejects a missing file with ENOENT', async () => {
    await expect(readWholeFile(join(dir.path, 'absent'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
