// The credential sources on their own: the helper protocol's answers, the helper name rule, a
// passwordFile read again only when it changes, a helper run once for concurrent callers.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileCredentialSource, HelperCredentialSource, helperCommand, parseHelperAnswer } from '../../src/proxy/credential-source.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-credsrc-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('parseHelperAnswer', () => {
  it('reads Username and Secret; <token> marks an identity token; an empty pair is none', () => {
    expect(parseHelperAnswer('{"ServerURL":"x","Username":"AWS","Secret":"s"}')).toEqual({ username: 'AWS', secret: 's' });
    expect(parseHelperAnswer('{"ServerURL":"x","Username":"<token>","Secret":"r"}')).toEqual({ username: '<token>', secret: 'r', identityToken: true });
    expect(parseHelperAnswer('{"ServerURL":"x","Username":"","Secret":""}')).toBeUndefined();
    expect(() => parseHelperAnswer('nope')).toThrow(/not JSON/);
    expect(() => parseHelperAnswer('{"Username":"u"}')).toThrow(/no Secret/);
  });
});

describe('helperCommand', () => {
  it('a name gets the docker-credential- prefix; a command or path stays', () => {
    expect(helperCommand('ecr-login')).toBe('docker-credential-ecr-login');
    expect(helperCommand('docker-credential-gcr')).toBe('docker-credential-gcr');
    expect(helperCommand('/opt/bin/helper')).toBe('/opt/bin/helper');
  });
});

describe('FileCredentialSource', () => {
  it('reads the file again when it changes, keeps the last password while it is missing', async () => {
    const file = join(dir, 'pw');
    await writeFile(file, 'one\n');
    const source = new FileCredentialSource('me', file, 'one');
    expect(await source.get()).toEqual({ username: 'me', secret: 'one' });
    await writeFile(file, 'two-rotated\n');
    expect(await source.get()).toEqual({ username: 'me', secret: 'two-rotated' });
    await rm(file);
    expect(await source.get()).toEqual({ username: 'me', secret: 'two-rotated' });
  });
});

describe('HelperCredentialSource', () => {
  it('runs the helper once for concurrent callers, again after invalidate of its answer only', async () => {
    const log = join(dir, 'calls');
    const script = join(dir, 'docker-credential-unit');
    await writeFile(script, `#!/bin/sh\ncat > /dev/null\necho run >> '${log}'\necho '{"Username":"u","Secret":"s"}'\n`);
    await chmod(script, 0o755);
    const source = new HelperCredentialSource({ command: script, lifetimeSeconds: 3600 }, 'registry.example');
    const answers = await Promise.all([source.get(), source.get(), source.get()]);
    expect(answers).toEqual([1, 2, 3].map(() => ({ username: 'u', secret: 's' })));
    source.invalidate({ username: 'u', secret: 'other' });
    await source.get();
    expect((await readFile(log, 'utf8')).trim().split('\n')).toHaveLength(1);
    source.invalidate({ username: 'u', secret: 's' });
    await source.get();
    expect((await readFile(log, 'utf8')).trim().split('\n')).toHaveLength(2);
  });

  it('a missing helper is an error naming the helper', async () => {
    const source = new HelperCredentialSource({ command: join(dir, 'docker-credential-absent'), lifetimeSeconds: 60 }, 'x');
    await expect(source.get()).rejects.toThrow(/credential helper .*docker-credential-absent not found/);
  });
});
