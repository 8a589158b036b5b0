// upstreams[].fallbackUrls: url first, then each fallback in order, when the one before gives no
// answer, an error answer or a 404; the last one's answer stands. A working url means the
// fallbacks are never asked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { freePort } from '../support/free-port.ts';

const image = makeImage({ name: 'fallback', files: { 'f.txt': 'fallback\n' } });
const other = makeImage({ name: 'fallback-other', files: { 'o.txt': 'only on the fallback\n' } });

describe('fallback URLs of one upstream', () => {
  let registry: UpstreamRegistry;
  let second: UpstreamRegistry;
  let primary: FaultProxy;
  let fallback: FaultProxy;
  let wharf: TestWharf;

  beforeAll(async () => {
    [registry, second] = await Promise.all([startUpstreamRegistry(), startUpstreamRegistry()]);
    await pushImage(registry.url, 'library/app', 'v1', image);
    await pushImage(second.url, 'library/app', 'v1', image);
    await pushImage(second.url, 'library/only', 'v1', other);
    [primary, fallback] = await Promise.all([startFaultProxy(registry.url), startFaultProxy(second.url)]);
    const nothing = `http://127.0.0.1:${await freePort()}`; // a mirror that is down: connection refused
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: primary.url, fallbackUrls: [nothing, fallback.url], default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await Promise.all([primary?.stop(), fallback?.stop()]);
    await Promise.all([registry?.stop(), second?.stop()]);
  });

  const pull = async (repo: string, img: typeof image) => {
    const m = await fetch(`${wharf.url}/v2/${repo}/manifests/v1`, { headers: { accept: img.manifest.mediaType } });
    const body = Buffer.from(await m.arrayBuffer());
    if (m.status !== 200) return m.status;
    expect(body.equals(img.manifest.body)).toBe(true);
    const b = await fetch(`${wharf.url}/v2/${repo}/blobs/${img.config.digest}`);
    expect(Buffer.from(await b.arrayBuffer()).equals(img.config.body)).toBe(true);
    return b.status;
  };

  it('asks only url while it answers', async () => {
    expect(await pull('library/app', image)).toBe(200);
    expect(primary.requests.length).toBeGreaterThan(0);
    expect(fallback.requests).toEqual([]);
  });

  it('goes on past a 404, a refused connection and a 503 to the next URL, in order', async () => {
    // Not on url (404), the fallback has it.
    expect(await pull('library/only', other)).toBe(200);
    expect(fallback.requests.some((r) => r.path === '/v2/library/only/manifests/v1')).toBe(true);
    // url down (503): everything comes from the fallback.
    primary.failWith = 503;
    const before = fallback.requests.length;
    const blob = await fetch(`${wharf.url}/v2/library/app/blobs/${image.layers[0]!.digest}`);
    expect(Buffer.from(await blob.arrayBuffer()).equals(image.layers[0]!.body)).toBe(true);
    expect(fallback.requests.length).toBeGreaterThan(before);
    primary.failWith = undefined;
  });

  it("gives the client the last URL's answer when none has it", async () => {
    const res = await fetch(`${wharf.url}/v2/library/missing/manifests/v1`, { headers: { accept: image.manifest.mediaType } });
    expect(res.status).toBe(404);
    expect(primary.requests.some((r) => r.path === '/v2/library/missing/manifests/v1')).toBe(true);
    expect(fallback.requests.some((r) => r.path === '/v2/library/missing/manifests/v1')).toBe(true);
  });
});
