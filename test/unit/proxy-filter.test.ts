import { describe, expect, it } from 'vitest';
import { ProxyFilter } from '../../src/auth/proxy-filter.ts';
import { GlobSyntaxError } from '../../src/auth/repository-glob.ts';

describe('ProxyFilter', () => {
  it('admits everything without lists', () => {
    expect(new ProxyFilter({}).admits('library/alpine')).toBe(true);
  });

  it('admits only allowed repositories when an allow list is given', () => {
    const filter = new ProxyFilter({ allow: ['library/*', 'bitnami/**'] });
    expect(filter.admits('library/alpine')).toBe(true);
    expect(filter.admits('bitnami/redis/sub')).toBe(true);
    expect(filter.admits('library/a/b')).toBe(false);
    expect(filter.admits('randomuser/miner')).toBe(false);
  });

  it('deny wins over allow', () => {
    const filter = new ProxyFilter({ allow: ['library/**'], deny: ['library/evil*', 'library/old/**'] });
    expect(filter.admits('library/alpine')).toBe(true);
    expect(filter.admits('library/evil')).toBe(false);
    expect(filter.admits('library/evil-twin')).toBe(false);
    expect(filter.admits('library/old/thing')).toBe(false);
    expect(filter.admits('library/old')).toBe(false);
  });

  it('deny alone admits the rest', () => {
    const filter = new ProxyFilter({ deny: ['**/miner'] });
    expect(filter.admits('x/miner')).toBe(false);
    expect(filter.admits('x/app')).toBe(true);
  });

  it('refuses malformed globs and an empty allow list', () => {
    expect(() => new ProxyFilter({ allow: ['Library/*'] })).toThrow(GlobSyntaxError);
    expect(() => new ProxyFilter({ deny: ['a/**b'] })).toThrow(GlobSyntaxError);
    expect(() => new ProxyFilter({ allow: [] })).toThrow(GlobSyntaxError);
  });
});
