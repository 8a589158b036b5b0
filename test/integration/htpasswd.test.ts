import { hash, verify as bcryptVerify } from '@node-rs/bcrypt';
import { execFileSync } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HtpasswdError, HtpasswdUsers, parseHtpasswd, type HtpasswdOptions } from '../../src/auth/htpasswd.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { until } from '../support/until.ts';

let dir: TempDir;
let path: string;
const opened: HtpasswdUsers[] = [];

beforeEach(async () => {
  dir = await makeTempDir('wharf-htpasswd-');
  path = join(dir.path, 'htpasswd');
});
afterEach(async () => {
  opened.splice(0).forEach((u) => u.close());
  await dir.cleanup();
});

// Real bcrypt hashes at the lowest cost, in the $2y$ form Apache's `htpasswd -B` writes (the
// same algorithm as $2b$; only the prefix differs).
async function bcrypt2y(password: string, cost = 4): Promise<string> {
  return (await hash(password, cost)).replace(/^\$2b\$/, '$2y$');
}

/** The real bcrypt check, counted. */
function countingCompare() {
  const calls: string[] = [];
  return {
    calls,
    compare: (password: string, stored: string) => {
      calls.push(stored);
      return bcryptVerify(password, stored);
    },
  };
}

async function open(options: Partial<HtpasswdOptions> = {}, hooks: Parameters<typeof HtpasswdUsers.open>[1] = {}) {
  const users = await HtpasswdUsers.open({ path, reloadDelayMs: 20, ...options }, hooks);
  opened.push(users);
  return users;
}

/** Replaces the file the way editors and secret volumes do: a new file renamed over the old. */
async function replaceFile(text: string): Promise<void> {
  const temp = `${path}.new`;
  await writeFile(temp, text);
  await rename(temp, path);
}

let aliceHash: string;
let bobHash: string;
beforeAll(async () => {
  aliceHash = await bcrypt2y('alice-secret');
  bobHash = (await hash('bob:secret:with:colons', 4)).replace(/^\$2b\$/, '$2a$');
});

describe('HtpasswdUsers: loading', () => {
  it('verifies $2y$, $2a$ and $2b$ users by exact name; skips comments, blank lines and CRLF', async () => {
    const carolHash = await hash('carol-pw', 4);
    await writeFile(path, `# users\r\nalice:${aliceHash}\r\n\r\nbob:${bobHash}\ncarol:${carolHash}\n`);
    const users = await open();
    expect(users.size).toBe(3);
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    expect(await users.verify('alice', 'wrong')).toBe(false);
    expect(await users.verify('bob', 'bob:secret:with:colons')).toBe(true);
    expect(await users.verify('carol', 'carol-pw')).toBe(true);
    expect(await users.verify('Alice', 'alice-secret')).toBe(false);
    expect(await users.verify('alice ', 'alice-secret')).toBe(false);
    expect(await users.verify('nobody', 'alice-secret')).toBe(false);
  });

  it.each([
    ['Apache MD5', '$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/'],
    ['SHA1', '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g='],
    ['crypt', 'rqXexS6ZhobKA'],
    ['plain text', 'secret'],
    ['bcrypt with a bad cost', '$2y$99$krPFHnkV3OW7WbBKuh7m5ujVMpN.XKzcadCdkzsZaVMCAlwY4fYRO'],
    ['truncated bcrypt', '$2y$05$krPFHnkV3OW7WbBKuh7m5ujVMpN.XKzcadCdkzsZaVMCAlwY4fY'],
    ['$2x$', '$2x$05$krPFHnkV3OW7WbBKuh7m5ujVMpN.XKzcadCdkzsZaVMCAlwY4fYRO'],
  ])('refuses %s at load, naming the line and never the hash', async (_what, bad) => {
    await writeFile(path, `alice:${aliceHash}\n# comment\nmallory:${bad}\n`);
    const error = await HtpasswdUsers.open({ path }).then(
      (u) => (u.close(), undefined),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(HtpasswdError);
    expect((error as HtpasswdError).line).toBe(3);
    expect((error as Error).message).toContain('line 3');
    expect((error as Error).message).toContain('bcrypt');
    expect((error as Error).message).not.toContain(bad);
    expect((error as Error).message).not.toContain('mallory');
  });

  it.each([
    ['a line without a colon', 'just-a-name', 'expected user:hash'],
    ['an empty user name', ':HASH', 'empty user name'],
    ['a user name with whitespace around it', ' alice:HASH', 'whitespace'],
  ])('refuses %s', async (_what, line, message) => {
    const text = `alice:${aliceHash}\n${line.replace('HASH', bobHash)}\n`;
    expect(() => parseHtpasswd(path, text)).toThrow(message);
    expect(() => parseHtpasswd(path, text)).toThrow('line 2');
  });

  it('refuses a user defined twice', () => {
    expect(() => parseHtpasswd(path, `alice:${aliceHash}\nbob:${bobHash}\nalice:${bobHash}\n`)).toThrow(
      'line 3: user already defined on line 1',
    );
  });

  it('refuses a missing file', async () => {
    await expect(HtpasswdUsers.open({ path })).rejects.toThrow(/cannot read: ENOENT/);
  });

  it('reads an empty file as no users', () => {
    expect(parseHtpasswd(path, '').size).toBe(0);
  });

  it('gives users the groups they are members of', async () => {
    await writeFile(path, `alice:${aliceHash}\nbob:${bobHash}\n`);
    const users = await open({ groups: { acme: ['alice', 'bob'], admins: ['alice'], ghosts: ['nobody'] } });
    expect(users.groupsOf('alice')).toEqual(['acme', 'admins']);
    expect(users.groupsOf('bob')).toEqual(['acme']);
    expect(users.groupsOf('carol')).toEqual([]);
    expect(users.groupsOf('Alice')).toEqual([]);
  });

  // .ci/run installs apache2-utils for this.
  it('verifies a file written by Apache htpasswd -B', async () => {
    execFileSync('htpasswd', ['-cbB', '-C', '5', path, 'apache-user', 'apache pw ünïcode'], { stdio: 'ignore' });
    const users = await open();
    expect(await users.verify('apache-user', 'apache pw ünïcode')).toBe(true);
    expect(await users.verify('apache-user', 'apache pw unicode')).toBe(false);
  });
});

describe('HtpasswdUsers: the cache of successful checks', () => {
  beforeEach(async () => {
    await writeFile(path, `alice:${aliceHash}\nbob:${bobHash}\n`);
  });

  it('answers a repeated right password without bcrypt', async () => {
    const { calls, compare } = countingCompare();
    const users = await open({}, { compare });
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it('still rejects a wrong password after a right one, and never caches failures', async () => {
    const { calls, compare } = countingCompare();
    const users = await open({}, { compare });
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    expect(await users.verify('alice', 'alice-secreT')).toBe(false);
    expect(await users.verify('alice', 'alice-secreT')).toBe(false);
    expect(await users.verify('alice', '')).toBe(false);
    expect(calls).toHaveLength(4);
  });

  it('does not let one user reuse another user’s cached check', async () => {
    const users = await open();
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    expect(await users.verify('bob', 'alice-secret')).toBe(false);
  });

  it('shares one bcrypt among concurrent checks of the same credentials', async () => {
    const { calls, compare } = countingCompare();
    const users = await open({}, { compare });
    const results = await Promise.all(Array.from({ length: 8 }, () => users.verify('alice', 'alice-secret')));
    expect(results).toEqual(Array(8).fill(true));
    expect(calls).toHaveLength(1);
  });

  it('forgets a successful check after its TTL', async () => {
    const { calls, compare } = countingCompare();
    const users = await open({ cacheTtlMs: 30 }, { compare });
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    await until(async () => (await users.verify('alice', 'alice-secret')) && calls.length === 2, 'a second bcrypt after the TTL');
  });

  it('costs an unknown user one bcrypt at the file’s usual cost', async () => {
    const { calls, compare } = countingCompare();
    const users = await open({}, { compare });
    expect(await users.verify('nobody', 'whatever')).toBe(false);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(/^\$2b\$04\$/);
    expect(calls[0]).not.toBe(aliceHash);
  });

  it('makes an unknown user cost as much as a known one: a real bcrypt, never a shortcut', async () => {
    const slow = await bcrypt2y('x', 10);
    await writeFile(path, `alice:${slow}\n`);
    const users = await open();
    const time = async (user: string) => {
      const start = performance.now();
      await users.verify(user, 'wrong');
      return performance.now() - start;
    };
    await time('alice');
    const known = await time('alice');
    const unknown = await time('nobody');
    // Cost 10 is tens of ms on any machine; a shortcut would be microseconds.
    expect(unknown).toBeGreaterThan(known / 4);
  });
});

describe('HtpasswdUsers: reload', () => {
  beforeEach(async () => {
    await writeFile(path, `alice:${aliceHash}\n`);
  });

  it('picks up a replaced file', async () => {
    const reloads: number[] = [];
    const users = await open({}, { onReload: (n) => reloads.push(n) });
    expect(await users.verify('carol', 'carol-pw')).toBe(false);
    await replaceFile(`alice:${aliceHash}\ncarol:${await bcrypt2y('carol-pw')}\n`);
    await until(() => users.size === 2, 'the new file to be loaded');
    expect(await users.verify('carol', 'carol-pw')).toBe(true);
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    expect(reloads.at(-1)).toBe(2);
  });

  it('picks up a file rewritten in place', async () => {
    const users = await open();
    await writeFile(path, `dave:${await bcrypt2y('dave-pw')}\n`);
    await until(async () => await users.verify('dave', 'dave-pw'), 'the rewritten file to be loaded');
    expect(await users.verify('alice', 'alice-secret')).toBe(false);
  });

  it('keeps the old users when the new file is bad, and reports it', async () => {
    const errors: Error[] = [];
    const users = await open({}, { onReloadError: (e) => errors.push(e) });
    await replaceFile(`alice:${aliceHash}\nmallory:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n`);
    await until(() => errors.length > 0, 'the bad file to be reported');
    expect(errors[0]).toBeInstanceOf(HtpasswdError);
    expect((errors[0] as HtpasswdError).line).toBe(2);
    expect(errors[0]!.message).not.toContain('$apr1$');
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    expect(users.size).toBe(1);
    // A good file after the bad one is loaded.
    await replaceFile(`erin:${await bcrypt2y('erin-pw')}\n`);
    await until(async () => await users.verify('erin', 'erin-pw'), 'the fixed file to be loaded');
  });

  it('keeps the old users when the file disappears', async () => {
    const errors: Error[] = [];
    const users = await open({}, { onReloadError: (e) => errors.push(e) });
    await rename(path, `${path}.gone`);
    await until(() => errors.length > 0, 'the missing file to be reported');
    expect(errors[0]!.message).toContain('ENOENT');
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
  });

  it('a changed password invalidates the cached check, because the hash is part of the key', async () => {
    const { calls, compare } = countingCompare();
    const users = await open({}, { compare });
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    expect(calls).toHaveLength(1);
    const newHash = await bcrypt2y('alice-new');
    await replaceFile(`alice:${newHash}\n`);
    await until(async () => await users.verify('alice', 'alice-new'), 'the new password to work');
    expect(await users.verify('alice', 'alice-secret')).toBe(false);
    expect(calls.at(-1)).toBe(newHash);
  });

  it('follows a Kubernetes secret volume, where the ..data symlink is swapped', async () => {
    // The layout kubelet writes: htpasswd -> ..data/htpasswd, ..data -> ..<timestamp>/
    const { mkdir, symlink } = await import('node:fs/promises');
    const volume = join(dir.path, 'volume');
    await mkdir(join(volume, '..v1'), { recursive: true });
    await writeFile(join(volume, '..v1', 'htpasswd'), `alice:${aliceHash}\n`);
    await symlink('..v1', join(volume, '..data'));
    await symlink('..data/htpasswd', join(volume, 'htpasswd'));
    path = join(volume, 'htpasswd');
    const users = await open();
    expect(await users.verify('alice', 'alice-secret')).toBe(true);
    await mkdir(join(volume, '..v2'));
    await writeFile(join(volume, '..v2', 'htpasswd'), `grace:${await bcrypt2y('grace-pw')}\n`);
    await symlink('..v2', join(volume, '..data_tmp'));
    await rename(join(volume, '..data_tmp'), join(volume, '..data'));
    await until(async () => await users.verify('grace', 'grace-pw'), 'the swapped secret to be loaded');
    expect(await users.verify('alice', 'alice-secret')).toBe(false);
  });

  it('stops reloading when closed', async () => {
    const closedReloads: number[] = [];
    const liveReloads: number[] = [];
    const closed = await open({}, { onReload: (n) => closedReloads.push(n) });
    await open({}, { onReload: (n) => liveReloads.push(n) });
    closed.close();
    await writeFile(path, `frank:${await bcrypt2y('frank-pw')}\n`);
    // The open one shows when a reload would have happened; the closed one must not have had it.
    await until(() => liveReloads.length > 0, 'the open instance to reload');
    await new Promise((r) => setTimeout(r, 50));
    expect(closedReloads).toEqual([]);
    expect(await closed.verify('frank', 'frank-pw')).toBe(false);
  });
});
