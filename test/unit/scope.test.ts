import { describe, expect, it } from 'vitest';
import { accessAllows, formatScope, MAX_SCOPES, parseScope, parseScopes } from '../../src/auth/scope.ts';

describe('parseScope', () => {
  it('reads repository scopes with one or several actions', () => {
    expect(parseScope('repository:library/alpine:pull')).toEqual({ type: 'repository', name: 'library/alpine', actions: ['pull'] });
    expect(parseScope('repository:ghcr.io/acme/app:pull,push')).toEqual({
      type: 'repository',
      name: 'ghcr.io/acme/app',
      actions: ['pull', 'push'],
    });
    expect(parseScope('repository:alpine:pull,pull')?.actions).toEqual(['pull']);
  });

  it('keeps a registry prefix, with or without a port, as part of the name', () => {
    expect(parseScope('repository:docker.io/library/alpine:pull')?.name).toBe('docker.io/library/alpine');
    expect(parseScope('repository:localhost:5000/team/app:pull')).toEqual({
      type: 'repository',
      name: 'localhost:5000/team/app',
      actions: ['pull'],
    });
    expect(parseScope('repository:registry.example:443/a:pull')?.name).toBe('registry.example:443/a');
  });

  it('reads registry:catalog:*', () => {
    expect(parseScope('registry:catalog:*')).toEqual({ type: 'registry', name: 'catalog', actions: ['*'] });
  });

  it.each([
    'repository:library/alpine:latest:pull', // ':' outside a host:port prefix
    'repository:localhost:5000:pull', // host:port with no repository after it
    'repository:a/localhost:5000/b:pull', // host:port not in the first segment
    'repository:localhost:port/a:pull',
    'repository:Library/Alpine:pull', // not the name grammar
    'repository:a//b:pull',
    'repository::pull',
    'repository:alpine:',
    'repository:alpine:pull,',
    'repository:alpine:Pull',
    'repository:alpine',
    'repository(plugin):alpine:pull',
    'blob:alpine:pull',
    'repository:[::1]:5000/a:pull',
    '',
    ':alpine:pull',
    `repository:${'a'.repeat(300)}:pull`,
  ])('drops %j', (scope) => {
    expect(parseScope(scope)).toBeUndefined();
  });
});

describe('parseScopes', () => {
  it('reads several scope parameters and space-separated scopes, merging the same resource', () => {
    expect(
      parseScopes(['repository:a/b:pull', 'repository:c:pull repository:a/b:push', 'nonsense', 'registry:catalog:*']),
    ).toEqual([
      { type: 'repository', name: 'a/b', actions: ['pull', 'push'] },
      { type: 'repository', name: 'c', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });

  it('ignores bad scopes instead of failing (a partial grant is not an error)', () => {
    expect(parseScopes(['repository:UPPER:pull', 'repository:ok:pull'])).toEqual([{ type: 'repository', name: 'ok', actions: ['pull'] }]);
    expect(parseScopes([])).toEqual([]);
  });

  it('bounds how many resources one request may name', () => {
    const many = Array.from({ length: MAX_SCOPES + 10 }, (_, i) => `repository:r${i}:pull`);
    const scopes = parseScopes(many);
    expect(scopes).toHaveLength(MAX_SCOPES);
    expect(scopes.at(-1)?.name).toBe(`r${MAX_SCOPES - 1}`);
  });

  it('formats back to the wire form', () => {
    expect(formatScope({ type: 'repository', name: 'localhost:5000/a', actions: ['pull', 'push'] })).toBe('repository:localhost:5000/a:pull,push');
  });
});

describe('accessAllows', () => {
  const access = [
    { type: 'repository', name: 'library/alpine', actions: ['pull'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
  ] as const;

  it('allows exactly the granted resource and action', () => {
    expect(accessAllows(access, 'repository', 'library/alpine', 'pull')).toBe(true);
    expect(accessAllows(access, 'repository', 'library/alpine', 'push')).toBe(false);
    expect(accessAllows(access, 'repository', 'library/alpine2', 'pull')).toBe(false);
    expect(accessAllows(access, 'registry', 'library/alpine', 'pull')).toBe(false);
    expect(accessAllows(access, 'registry', 'catalog', '*')).toBe(true);
    expect(accessAllows(undefined, 'repository', 'library/alpine', 'pull')).toBe(false);
  });
});
