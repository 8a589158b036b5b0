import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Hex, StaticTokenError, StaticTokens } from '../../src/auth/static-tokens.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

let dir: TempDir;
beforeEach(async () => {
  dir = await makeTempDir('wharf-static-tokens-');
});
afterEach(() => dir.cleanup());

const NODE_TOKEN = 'node-pool-token-4f9a2c1e7b';
const CI_TOKEN = 'ci-runner-token-0d8e6b3a91';

describe('StaticTokens', () => {
  it('identifies machines by a token given as its SHA-256 or read from a file', async () => {
    const file = join(dir.path, 'ci.token');
    await writeFile(file, `${CI_TOKEN}\n`);
    const tokens = await StaticTokens.load({
      machines: {
        'node-pool': { sha256: sha256Hex(NODE_TOKEN), groups: ['nodes'] },
        ci: { file },
      },
    });
    expect(tokens.size).toBe(2);
    expect(tokens.identify(NODE_TOKEN)).toEqual({ name: 'node-pool', groups: ['nodes'] });
    expect(tokens.identify(CI_TOKEN)).toEqual({ name: 'ci', groups: [] });
    expect(tokens.identify(`${CI_TOKEN}\n`)).toBeUndefined();
    expect(tokens.identify(CI_TOKEN.toUpperCase())).toBeUndefined();
    expect(tokens.identify('')).toBeUndefined();
    expect(tokens.identify(sha256Hex(NODE_TOKEN))).toBeUndefined();
  });

  it('accepts the digest in upper case hex too', async () => {
    const tokens = await StaticTokens.load({ machines: { n: { sha256: sha256Hex(NODE_TOKEN).toUpperCase() } } });
    expect(tokens.identify(NODE_TOKEN)?.name).toBe('n');
  });

  it('identifies nothing when no machines are configured', async () => {
    expect((await StaticTokens.load({ machines: {} })).identify(NODE_TOKEN)).toBeUndefined();
  });

  it('refuses a digest that is not 64 hex digits, without echoing it', async () => {
    const error = await StaticTokens.load({ machines: { n: { sha256: NODE_TOKEN } } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StaticTokenError);
    expect((error as Error).message).toContain('"n"');
    expect((error as Error).message).not.toContain(NODE_TOKEN);
  });

  it('refuses a short or missing token file, without echoing the token', async () => {
    const short = join(dir.path, 'short');
    await writeFile(short, 'abc123\n');
    const error = await StaticTokens.load({ machines: { n: { file: short } } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StaticTokenError);
    expect((error as Error).message).toContain('fewer than 16');
    expect((error as Error).message).not.toContain('abc123');
    await expect(StaticTokens.load({ machines: { n: { file: join(dir.path, 'absent') } } })).rejects.toThrow('ENOENT');
  });

  it('refuses two machines with the same token', async () => {
    const file = join(dir.path, 'dup');
    await writeFile(file, NODE_TOKEN);
    await expect(
      StaticTokens.load({ machines: { a: { sha256: sha256Hex(NODE_TOKEN) }, b: { file } } }),
    ).rejects.toThrow('same token as another machine');
  });
});
