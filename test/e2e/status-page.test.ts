// The status page in a real browser (headless Chromium): its script must fetch /status.json and
// fill in upstream health, hit ratio, cache size and the most pulled repositories.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { Skopeo } from '../support/skopeo.ts';
import { renderedDom } from '../support/chromium.ts';

const image = makeImage({ name: 'page', files: { 'p.txt': 'status page\n' }, extraLayerBytes: 200 << 10 });

/** The text of the element with this id in a DOM dump (the page sets text, never markup). */
function textOf(dom: string, id: string): string {
  const m = new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(dom);
  if (!m) throw new Error(`no element #${id} in the rendered page`);
  return m[1]!;
}

describe('status page', () => {
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  let skopeo: Skopeo;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/page', 'latest', image);
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }, { name: 'quay.io', url: 'http://127.0.0.1:9' }] });
    skopeo = await Skopeo.create();
    for (let i = 0; i < 2; i++) await skopeo.copy(`docker://${wharf.host}/library/page:latest`);
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await skopeo?.cleanup();
  });

  it('shows upstream health, hit ratio, cache size and top repositories', async () => {
    const dom = await renderedDom(`${wharf.url}/`);
    expect(textOf(dom, 'error')).toBe('');
    expect(textOf(dom, 'hit-ratio')).toMatch(/^\d+\.\d %$/);
    expect(textOf(dom, 'cache-blobs')).toBe(String(1 + image.layers.length));
    expect(textOf(dom, 'cache-size')).toMatch(/^\d+(\.\d)? (KB|MB)$/);
    const upstreams = /id="upstreams">(.*?)<\/tbody>/s.exec(dom)![1]!;
    expect(upstreams).toContain('<td>docker.io</td><td class="reachable">reachable</td>');
    expect(upstreams).toContain('<td>quay.io</td><td class="unknown">unknown</td>');
    const top = /id="top-repositories">(.*?)<\/tbody>/s.exec(dom)![1]!;
    expect(top).toContain('<td>docker.io/library/page</td><td>2</td>');
  });
});
