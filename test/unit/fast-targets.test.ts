import { describe, expect, it } from 'vitest';
import { FAST_TARGETS_HELD, FastTargets } from '../../src/http/fast-targets.ts';
import { UpstreamRouter } from '../../src/proxy/upstream-router.ts';

const router = () =>
  new UpstreamRouter(
    [
      { name: 'docker.io', libraryPrefix: true, offline: false },
      { name: 'ghcr.io', libraryPrefix: false, offline: false },
    ],
    'docker.io',
  );

describe('FastTargets', () => {
  it('works out the route, reference, scope and pull key of a manifest URL', () => {
    const targets = new FastTargets(router());
    expect(targets.of('/v2/alpine/manifests/3.20')).toMatchObject({
      route: { upstream: { name: 'docker.io' }, repository: 'library/alpine', namespace: undefined },
      reference: '3.20',
      scope: 'alpine',
      pulled: 'docker.io/library/alpine',
    });
    expect(targets.of('/v2/acme/app/manifests/v1?ns=ghcr.io')).toMatchObject({
      route: { upstream: { name: 'ghcr.io' }, repository: 'acme/app', namespace: 'ghcr.io' },
      scope: 'ghcr.io/acme/app',
      pulled: 'ghcr.io/acme/app',
    });
    expect(targets.of('/v2/ghcr.io/acme/app/manifests/v1')).toMatchObject({ route: { upstream: { name: 'ghcr.io' }, repository: 'acme/app' }, scope: 'ghcr.io/acme/app' });
  });

  it('answers a URL asked again with what it worked out the first time', () => {
    const targets = new FastTargets(router());
    expect(targets.of('/v2/alpine/manifests/3.20')).toBe(targets.of('/v2/alpine/manifests/3.20'));
  });

  it.each([
    ['a blob', '/v2/alpine/blobs/sha256:' + 'a'.repeat(64)],
    ['the base endpoint', '/v2/'],
    ['an escaped path', '/v2/alpine/manifests/3%2e20'],
    ['a query other than ns', '/v2/alpine/manifests/3.20?foo=1'],
    ['a registry not configured', '/v2/alpine/manifests/3.20?ns=quay.io'],
    ['an invalid repository name', '/v2/Alpine/manifests/3.20'],
    ['something outside /v2/', '/metrics'],
  ])('leaves %s alone', (_what, url) => {
    expect(new FastTargets(router()).of(url)).toBeUndefined();
  });

  it('holds a bounded number of URLs, starting over when full', () => {
    const targets = new FastTargets(router());
    const first = targets.of('/v2/alpine/manifests/first')!;
    for (let i = 0; i < FAST_TARGETS_HELD - 1; i++) targets.of(`/v2/alpine/manifests/t${i}`);
    expect(targets.of('/v2/alpine/manifests/first')).toBe(first); // still held: exactly full
    targets.of('/v2/alpine/manifests/one-more');
    const again = targets.of('/v2/alpine/manifests/first')!;
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });
});
