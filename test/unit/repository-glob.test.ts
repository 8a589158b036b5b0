import { describe, expect, it } from 'vitest';
import { compileGlob, compileGlobs, GlobSyntaxError } from '../../src/auth/repository-glob.ts';

const matches = (glob: string, name: string) => compileGlob(glob).matches(name);

describe('repository globs', () => {
  it("'*' stays within one segment", () => {
    expect(matches('docker.io/library/*', 'docker.io/library/alpine')).toBe(true);
    expect(matches('docker.io/library/*', 'docker.io/library/a/b')).toBe(false);
    expect(matches('docker.io/library/*', 'docker.io/library')).toBe(false);
    expect(matches('docker.io/library/*', 'docker.io/library/')).toBe(false);
    expect(matches('*/library/alpine', 'quay.io/library/alpine')).toBe(true);
    expect(matches('*/library/alpine', 'a/b/library/alpine')).toBe(false);
    expect(matches('ghcr.io/acme/app-*', 'ghcr.io/acme/app-web')).toBe(true);
    expect(matches('ghcr.io/acme/app-*', 'ghcr.io/acme/app-web/x')).toBe(false);
    expect(matches('ghcr.io/*cme*/x', 'ghcr.io/acme/x')).toBe(true);
  });

  it("'**' crosses segments, zero or more of them", () => {
    expect(matches('docker.io/library/**', 'docker.io/library/a/b')).toBe(true);
    expect(matches('docker.io/library/**', 'docker.io/library/alpine')).toBe(true);
    expect(matches('docker.io/library/**', 'docker.io/library')).toBe(true);
    expect(matches('docker.io/library/**', 'docker.io/libraryx/alpine')).toBe(false);
    expect(matches('docker.io/library/**', 'docker.io/librar')).toBe(false);
    expect(matches('a/**/b', 'a/b')).toBe(true);
    expect(matches('a/**/b', 'a/x/y/b')).toBe(true);
    expect(matches('a/**/b', 'a/x/y/bb')).toBe(false);
    expect(matches('a/**/b', 'ab')).toBe(false);
    expect(matches('**/alpine', 'docker.io/library/alpine')).toBe(true);
    expect(matches('**/alpine', 'alpine')).toBe(true);
    expect(matches('**/alpine', 'docker.io/library/xalpine')).toBe(false);
    expect(matches('**', 'anything/at/all')).toBe(true);
  });

  it('treats dots and other characters literally', () => {
    expect(matches('docker.io/library/alpine', 'dockerXio/library/alpine')).toBe(false);
    expect(matches('docker.io/library/alpine', 'docker.io/library/alpine')).toBe(true);
    expect(matches('localhost:5000/team/*', 'localhost:5000/team/app')).toBe(true);
    expect(matches('localhost:5000/team/*', 'localhost:5001/team/app')).toBe(false);
  });

  it('anchors at both ends', () => {
    expect(matches('ghcr.io/acme/*', 'evil.io/ghcr.io/acme/x')).toBe(false);
    expect(matches('ghcr.io/acme', 'ghcr.io/acme2')).toBe(false);
  });

  it('matches any of several globs', () => {
    const m = compileGlobs(['docker.io/library/**', 'registry.k8s.io/**']);
    expect(m.matches('registry.k8s.io/pause')).toBe(true);
    expect(m.matches('docker.io/library/alpine')).toBe(true);
    expect(m.matches('ghcr.io/x/y')).toBe(false);
    const literals = compileGlobs(['a/b', 'c/d']);
    expect(literals.matches('c/d')).toBe(true);
    expect(literals.matches('c/e')).toBe(false);
  });

  it.each([
    ['', 'empty'],
    ['/docker.io/x', 'empty path segment'],
    ['docker.io/x/', 'empty path segment'],
    ['docker.io//x', 'empty path segment'],
    ['docker.io/Library/*', 'only lowercase'],
    ['docker.io/{a,b}', 'only lowercase'],
    ['docker.io/a?', 'only lowercase'],
    ['docker.io/[ab]', 'only lowercase'],
    ['!docker.io/a', 'only lowercase'],
    ['docker.io/a**', 'whole path segment'],
    ['docker.io/***', 'whole path segment'],
    ['a/**/**/b', 'redundant'],
  ])('refuses %j at construction (%s)', (glob, why) => {
    expect(() => compileGlob(glob)).toThrow(GlobSyntaxError);
    expect(() => compileGlob(glob)).toThrow(why);
  });

  it('refuses an empty list', () => {
    expect(() => compileGlobs([])).toThrow(GlobSyntaxError);
  });
});
