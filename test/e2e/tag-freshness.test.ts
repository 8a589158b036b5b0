// cache.tagFreshness as a user sets it: release tags immutable (never revalidated once cached),
// latest revalidated on every pull, everything else after tagTtlSeconds; counted at the
// upstream, through both thread modes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';

const image = makeImage({ name: 'freshness', files: { 'f.txt': 'fresh\n' } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each([1, 2])('tag freshness per pattern (threads: %i)', (threads) => {
  let registry: UpstreamRegistry;
  let proxy: FaultProxy;
  let wharf: TestWharf;

  beforeAll(async () => {
    registry = await startUpstreamRegistry();
    for (const tag of ['v1.2.3', 'latest', 'edge']) await pushImage(registry.url, 'library/app', tag, image);
    proxy = await startFaultProxy(registry.url);
    wharf = await startWharf({
      threads,
      tagTtlSeconds: 1,
      cache: { tagFreshness: [{ match: '**:v*', ttlSeconds: 'immutable' }, { match: 'docker.io/library/**:latest', ttlSeconds: 0 }] },
      upstreams: [{ name: 'docker.io', url: proxy.url, default: true }],
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await proxy?.stop();
    await registry?.stop();
  });

  const pull = async (tag: string) => {
    const res = await fetch(`${wharf.url}/v2/library/app/manifests/${tag}`, { headers: { accept: image.manifest.mediaType } });
    expect(Buffer.from(await res.arrayBuffer()).equals(image.manifest.body)).toBe(true);
    return res.headers.get('x-wharf-cache');
  };
  const asked = (tag: string) => proxy.requests.filter((r) => r.path === `/v2/library/app/manifests/${tag}`).length;

  it('never revalidates an immutable tag, always revalidates latest, and the rest after tagTtlSeconds', async () => {
    for (const tag of ['v1.2.3', 'latest', 'edge']) expect(await pull(tag)).toBe('miss');
    const first = { v: asked('v1.2.3'), latest: asked('latest'), edge: asked('edge') };
    expect([await pull('v1.2.3'), await pull('latest'), await pull('edge')]).toEqual(['hit', 'revalidated', 'hit']);
    await sleep(1100);
    expect([await pull('v1.2.3'), await pull('latest'), await pull('edge')]).toEqual(['hit', 'revalidated', 'revalidated']);
    expect(asked('v1.2.3')).toBe(first.v);
    expect(asked('latest')).toBe(first.latest + 2);
    expect(asked('edge')).toBe(first.edge + 1);
  });
});
