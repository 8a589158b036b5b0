import { describe, expect, it } from 'vitest';
import { parseRegistryPath } from '../../src/http/parse-registry-path.ts';
import { UpstreamRouter } from '../../src/proxy/upstream-router.ts';
import { NameInvalidError, NameUnknownError } from '../../src/errors.ts';

const d = `sha256:${'c'.repeat(64)}`;

describe('parseRegistryPath', () => {
  it.each([
    ['/v2/', { kind: 'base' }],
    ['/v2', { kind: 'base' }],
    ['/v2/_catalog', { kind: 'catalog' }],
    ['/v2/library/alpine/manifests/latest', { kind: 'manifest', name: 'library/alpine', reference: 'latest' }],
    ['/v2/ghcr.io/o/i/manifests/' + d, { kind: 'manifest', name: 'ghcr.io/o/i', reference: d }],
    ['/v2/a/blobs/' + d, { kind: 'blob', name: 'a', digest: d }],
    ['/v2/a/blobs/sha256%3A' + 'c'.repeat(64), { kind: 'blob', name: 'a', digest: d }],
    ['/v2/a/b/blobs/uploads/', { kind: 'upload', name: 'a/b' }],
    ['/v2/a/b/blobs/uploads/1234-5678', { kind: 'upload', name: 'a/b' }],
    ['/v2/a/b/tags/list', { kind: 'tags', name: 'a/b' }],
    ['/v2/a/referrers/' + d, { kind: 'referrers', name: 'a', digest: d }],
    ['/v2/a/manifests/', { kind: 'unknown' }],
    ['/v2/manifests/latest', { kind: 'unknown' }],
    ['/v2/a/something', { kind: 'unknown' }],
  ])('%s', (path, expected) => expect(parseRegistryPath(path)).toEqual(expected));
});

describe('UpstreamRouter', () => {
  const hub = { name: 'docker.io', libraryPrefix: true };
  const ghcr = { name: 'ghcr.io', libraryPrefix: false };
  const local = { name: 'localhost:5000', libraryPrefix: false };
  const router = new UpstreamRouter([hub, ghcr, local], 'docker.io');

  it('uses the default upstream for plain names (dockerd registry-mirrors)', () => {
    expect(router.route('library/alpine', undefined)).toEqual({ upstream: hub, repository: 'library/alpine', namespace: undefined });
  });
  it('adds library/ to single-segment Docker Hub names', () => {
    expect(router.route('alpine', undefined).repository).toBe('library/alpine');
  });
  it('routes by first path segment (podman/CRI-O host-in-path)', () => {
    expect(router.route('ghcr.io/owner/img', undefined)).toEqual({ upstream: ghcr, repository: 'owner/img', namespace: undefined });
  });
  it('routes by ?ns= (containerd) and echoes the namespace', () => {
    expect(router.route('owner/img', 'ghcr.io')).toEqual({ upstream: ghcr, repository: 'owner/img', namespace: 'ghcr.io' });
  });
  it('strips a host-in-path segment equal to ns (BuildKit with a path mirror)', () => {
    expect(router.route('ghcr.io/owner/img', 'ghcr.io').repository).toBe('owner/img');
  });
  it('reaches an upstream whose name has a port through ns only', () => {
    expect(router.route('team/app', 'localhost:5000').upstream).toBe(local);
  });
  it('never dials an unconfigured ns: 404 NAME_UNKNOWN', () => {
    expect(() => router.route('owner/img', 'evil.example.com')).toThrow(NameUnknownError);
  });
  it('does not add library/ to other registries', () => {
    expect(router.route('ghcr.io/img', undefined).repository).toBe('img');
  });
  it('checks the grammar of what remains', () => {
    expect(() => router.route('ghcr.io/Owner/img', undefined)).toThrow(NameInvalidError);
    expect(() => router.route('UPPER', undefined)).toThrow(NameInvalidError);
  });
  it('a name that only looks like an upstream host is a repository of the default', () => {
    expect(router.route('quay.io/x', undefined)).toEqual({ upstream: hub, repository: 'quay.io/x', namespace: undefined });
  });
  it('without a default upstream, plain names are NAME_UNKNOWN', () => {
    const noDefault = new UpstreamRouter([ghcr], undefined);
    expect(() => noDefault.route('library/alpine', undefined)).toThrow(NameUnknownError);
  });
});
