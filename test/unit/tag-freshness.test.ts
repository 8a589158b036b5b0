// Per-pattern tag freshness: first matching rule wins, patterns split at the tag's colon (a host
// may carry a port), immutable never expires, anything unmatched takes the default.
import { describe, expect, it } from 'vitest';
import { splitPattern, TagFreshness } from '../../src/proxy/tag-freshness.ts';

describe('TagFreshness', () => {
  const freshness = new TagFreshness(60, [
    { match: 'docker.io/library/**:latest', ttlSeconds: 0 },
    { match: '**:v*', ttlSeconds: 'immutable' },
    { match: 'localhost:5000/team/*:nightly-*', ttlSeconds: 3600 },
  ]);

  it('takes the first rule that matches the routed repository and the tag', () => {
    expect(freshness.ttlMs('docker.io', 'library/alpine', 'latest')).toBe(0);
    expect(freshness.ttlMs('docker.io', 'library/alpine', 'v3.20')).toBe(Infinity);
    expect(freshness.ttlMs('ghcr.io', 'o/i', 'v1')).toBe(Infinity);
    expect(freshness.ttlMs('localhost:5000', 'team/app', 'nightly-2026-12-01')).toBe(3_600_000);
    expect(freshness.ttlMs('localhost:5000', 'team/sub/app', 'nightly-1')).toBe(60_000); // * is one segment
    expect(freshness.ttlMs('ghcr.io', 'o/i', 'latest')).toBe(60_000); // latest only under docker.io/library
    expect(freshness.ttlMs('docker.io', 'library/alpine', 'xv1')).toBe(60_000); // a tag glob is anchored
  });

  it('has the default alone without rules', () => {
    expect(new TagFreshness(5).ttlMs('docker.io', 'library/alpine', 'v1')).toBe(5000);
  });

  it('refuses patterns it could misread', () => {
    expect(splitPattern('localhost:5000/x/**:v*')).toEqual({ repository: 'localhost:5000/x/**', tag: 'v*' });
    for (const bad of ['docker.io/library/alpine', 'localhost:5000/x', '**:', '**:a/b', 'Docker.io/x:v1', '**:v$']) expect(() => splitPattern(bad), bad).toThrow();
  });
});
