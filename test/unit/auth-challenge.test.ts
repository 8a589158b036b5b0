import { describe, expect, it } from 'vitest';
import { parseAuthChallenge } from '../../src/proxy/auth-challenge.ts';

describe('parseAuthChallenge', () => {
  it('reads a Docker Hub style Bearer challenge', () => {
    const c = parseAuthChallenge(
      'Bearer realm="https://auth.example.test/token",service="registry.example.test",scope="repository:library/alpine:pull"',
    );
    expect(c).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example.test/token', service: 'registry.example.test', scope: 'repository:library/alpine:pull' },
    });
  });

  it('keeps commas and escaped quotes inside quoted values', () => {
    const c = parseAuthChallenge('Bearer realm="http://127.0.0.1:1/t",scope="repository:a/b:pull,push",error="say \\"no\\""');
    expect(c?.params.scope).toBe('repository:a/b:pull,push');
    expect(c?.params.error).toBe('say "no"');
  });

  it('is case-insensitive in scheme and parameter names and tolerates spaces', () => {
    const c = parseAuthChallenge('BEARER  Realm = "http://h/t" , Service=reg');
    expect(c).toEqual({ scheme: 'bearer', params: { realm: 'http://h/t', service: 'reg' } });
  });

  it('reads Basic and prefers Bearer when both are offered', () => {
    expect(parseAuthChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } });
    expect(parseAuthChallenge(['Basic realm="x"', 'Bearer realm="http://h/t"'])?.scheme).toBe('bearer');
    expect(parseAuthChallenge('Basic realm="x", Bearer realm="http://h/t"')?.params.realm).toBe('http://h/t');
  });

  it('ignores unknown schemes, empty and absent headers', () => {
    expect(parseAuthChallenge('Negotiate abc')).toBeUndefined();
    expect(parseAuthChallenge('')).toBeUndefined();
    expect(parseAuthChallenge(undefined)).toBeUndefined();
  });

  it('survives an unterminated quoted value', () => {
    expect(parseAuthChallenge('Bearer realm="http://h/t')?.params.realm).toBe('http://h/t');
  });
});
