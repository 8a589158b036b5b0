// The native hash thread (native/hash.c, built by npm ci): the digest of many updates asked for
// at once equals node:crypto's, for sha256 and sha512; an unknown algorithm is refused at once;
// a digest is refused while updates are outstanding and a second time, so a hash cannot be read
// half done or reused. Writing and hashing on the thread puts every byte at its position in the
// file; a write that fails rejects with the errno's code and leaves the hash without a digest.
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir } from '../support/temp-dir.ts';
import { HashThreadError } from '../../src/cache/hash-offload.ts';
import { loadNativeHashThread } from '../../src/cache/native-hash-thread.ts';

function nativeThread() {
  const thread = loadNativeHashThread();
  if (thread instanceof Error) throw thread;
  return thread;
}

describe('the native hash thread', () => {
  it.each(['sha256', 'sha512'])('hashes %s updates asked for all at once, in order', async (algorithm) => {
    const bytes = randomBytes(9 << 20);
    const shared = Buffer.from(new SharedArrayBuffer(bytes.length));
    bytes.copy(shared);
    const hash = nativeThread().hash(algorithm);
    // Uneven pieces, none awaited before the next is asked for.
    const cuts = [0, 1, 4096, 65_537, 1 << 20, 5 << 20, bytes.length];
    await Promise.all(cuts.slice(1).map((end, i) => hash.update(shared.buffer as SharedArrayBuffer, cuts[i]!, end - cuts[i]!)));
    expect(await hash.digest()).toBe(createHash(algorithm).update(bytes).digest('hex'));
  });

  it('hashes two blobs apart when their updates interleave', async () => {
    const a = Buffer.from(new SharedArrayBuffer(1 << 20)).fill(1);
    const b = Buffer.from(new SharedArrayBuffer(1 << 20)).fill(2);
    const thread = nativeThread();
    const [ha, hb] = [thread.hash('sha256'), thread.hash('sha256')];
    await Promise.all([ha.update(a.buffer as SharedArrayBuffer, 0, a.length), hb.update(b.buffer as SharedArrayBuffer, 0, b.length), ha.update(a.buffer as SharedArrayBuffer, 0, 10)]);
    expect(await ha.digest()).toBe(createHash('sha256').update(a).update(a.subarray(0, 10)).digest('hex'));
    expect(await hb.digest()).toBe(createHash('sha256').update(b).digest('hex'));
  });

  it('refuses an unknown algorithm, a digest under outstanding updates, and a second digest', async () => {
    const thread = nativeThread();
    expect(() => thread.hash('no-such-hash')).toThrow(HashThreadError);
    const bytes = Buffer.from(new SharedArrayBuffer(8 << 20));
    const hash = thread.hash('sha256');
    const updated = hash.update(bytes.buffer as SharedArrayBuffer, 0, bytes.length);
    await expect(hash.digest()).rejects.toThrow(/outstanding/);
    await updated;
    expect(await hash.digest()).toBe(createHash('sha256').update(bytes).digest('hex'));
    await expect(hash.digest()).rejects.toThrow(/twice/);
  });

  it('writes each batch at its position in the file, then hashes it, batches asked for all at once', async () => {
    const dir = await makeTempDir('wharf-native-write-');
    try {
      const path = join(dir.path, 'blob');
      const file = await open(path, 'wx');
      // Plain (not shared) memory too: the thread reads the bytes where they are.
      const bytes = randomBytes(9 << 20);
      const cuts = [0, 1, 4096, 65_537, 1 << 20, 5 << 20, bytes.length];
      const hash = nativeThread().hash('sha256');
      const jobs = cuts.slice(1).map((end, i) => hash.writeAndUpdate!(file.fd, bytes.subarray(cuts[i]!, end), cuts[i]!));
      // Each job's write is reported before its hash.
      const order: string[] = [];
      await Promise.all(jobs.flatMap(({ written, hashed }, i) => [written.then(() => order.push(`w${i}`)), hashed.then(() => order.push(`h${i}`))]));
      for (let i = 0; i < jobs.length; i++) expect(order.indexOf(`w${i}`)).toBeLessThan(order.indexOf(`h${i}`));
      await file.close();
      expect(await hash.digest()).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect((await readFile(path)).equals(bytes)).toBe(true);
    } finally {
      await dir.cleanup();
    }
  });

  it('rejects a write the file refuses with its errno code, and gives that hash no digest', async () => {
    const dir = await makeTempDir('wharf-native-write-');
    try {
      const path = join(dir.path, 'blob');
      await (await open(path, 'wx')).close();
      const readOnly = await open(path, 'r');
      const hash = nativeThread().hash('sha256');
      const bytes = Buffer.alloc(1 << 16, 7);
      const { written, hashed } = hash.writeAndUpdate!(readOnly.fd, bytes, 0);
      await expect(written).rejects.toMatchObject({ code: 'EBADF', syscall: 'write' });
      await expect(hashed).rejects.toMatchObject({ code: 'EBADF' });
      await readOnly.close();
      await expect(hash.digest()).rejects.toThrow(/write .* failed/);
      await expect(hash.update(new SharedArrayBuffer(8), 0, 8)).rejects.toThrow(/failed write/);
      const refused = nativeThread().hash('sha256').writeAndUpdate!(-1, bytes, 0);
      await expect(refused.written).rejects.toThrow(/non-negative/);
      await expect(refused.hashed).rejects.toThrow(/non-negative/);
    } finally {
      await dir.cleanup();
    }
  });
});
