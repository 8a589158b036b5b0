// threads: 2: a hit thread's client of a blob the main thread is filling gets the blob from the
// hit thread itself, sent from the fill's file, while only the fill's progress crosses the
// loopback hand-over (src/http/fill-handover.ts, src/threads/followed-fill.ts). Once every body
// byte crossed loopback, and the hit thread's garbage of it took a herd's peak RSS over target.
//
// A real registry behind a fault proxy that drips blob bodies (so every client joins the running
// fill) and can corrupt them. Each client has its own connection: the kernel spreads them over
// both threads (SO_REUSEPORT), so with 16 of them both threads have followers.
// wharf_thread_handover_bytes_total (what the main thread's internal listener wrote back,
// sendfile bytes included) shows what crossed loopback.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { fetchBlob } from '../support/fetch-blob.ts';
import { metricValue } from '../support/metrics.ts';

const CLIENTS = 16;
const LAYER_BYTES = 6 << 20;
const DRIP = { bytes: 256 << 10, everyMs: 15 };
const HANDOVER = 'wharf_thread_handover_bytes_total';

const sha = (body: Buffer) => `sha256:${createHash('sha256').update(body).digest('hex')}`;

/** Every client got the blob whole, with its length and none of the hand-over's internal headers. */
function expectWholeBlobs(answers: ReadonlyArray<Awaited<ReturnType<typeof fetchBlob>>>, layer: { readonly body: Buffer; readonly digest: string }): void {
  for (const a of answers) {
    expect(a.status).toBe(200);
    expect(a.complete).toBe(true);
    expect(a.headers['content-length']).toBe(String(layer.body.length));
    expect(Object.keys(a.headers).filter((h) => h.startsWith('x-wharf-fill'))).toEqual([]);
    expect(sha(a.body)).toBe(layer.digest);
  }
}

describe('hit threads follow the main thread\'s fills from the file (threads: 2)', () => {
  let registry: UpstreamRegistry;
  let proxy: FaultProxy;
  let wharf: TestWharf;
  let images = 0;

  /** A new image in the registry; its big layer is uncached in wharf. */
  const pushed = async () => {
    const name = `follow${images++}`;
    const image = makeImage({ name, files: { 'f.txt': `${name}\n` }, extraLayerBytes: LAYER_BYTES });
    await pushImage(registry.url, `library/${name}`, 'latest', image);
    return { name, layer: image.layers.at(-1)! };
  };

  const upstreamGets = async (path: string) => {
    await registry.settleLog();
    return registry.requestLog().filter((e) => e.method === 'GET' && e.path === path).length;
  };

  const handover = async () => ({
    followed: await metricValue(wharf.url, HANDOVER, { answer: 'followed' }),
    streamed: await metricValue(wharf.url, HANDOVER, { answer: 'streamed' }),
  });

  beforeAll(async () => {
    registry = await startUpstreamRegistry();
    proxy = await startFaultProxy(registry.url);
    wharf = await startWharf({ threads: 2, upstreams: [{ name: 'docker.io', url: proxy.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await proxy?.stop();
    await registry?.stop();
  });

  it('serves a herd of one uncached blob with one upstream GET, and no body bytes over loopback', async () => {
    const { name, layer } = await pushed();
    proxy.dripBlobs = DRIP;
    const before = await handover();
    const servedBefore = await metricValue(wharf.url, 'wharf_served_bytes_total', { kind: 'blob' });
    const url = `${wharf.url}/v2/${name}/blobs/${layer.digest}`;
    const answers = await Promise.all(Array.from({ length: CLIENTS }, () => fetchBlob(url, { deadlineMs: 30_000 })));
    proxy.dripBlobs = undefined;
    expectWholeBlobs(answers, layer);
    expect(await upstreamGets(`/v2/library/${name}/blobs/${layer.digest}`)).toBe(1);
    const after = await handover();
    // Streamed: what went the old way, every body byte (a client per thread: ~50 MB here).
    expect(after.streamed - before.streamed).toBeLessThan(64 << 10);
    // Some followers were the hit thread's (1 in 65 536 that none is), and got the blob from the file.
    expect(after.followed - before.followed).toBeGreaterThan(0);
    expect(after.followed - before.followed).toBeLessThan(CLIENTS * (16 << 10));
    // Logged and counted once each, as the blob's length, whichever thread sent it.
    const served = (await metricValue(wharf.url, 'wharf_served_bytes_total', { kind: 'blob' })) - servedBefore;
    expect(served).toBeGreaterThanOrEqual(CLIENTS * layer.body.length);
    expect(served).toBeLessThan(CLIENTS * (layer.body.length + (2 << 10)));
  });

  it('cuts every follower of a fill whose digest does not verify, on both threads, and caches nothing', async () => {
    const { name, layer } = await pushed();
    proxy.dripBlobs = DRIP;
    proxy.corruptBlobs = true;
    const before = await handover();
    const url = `${wharf.url}/v2/${name}/blobs/${layer.digest}`;
    const answers = await Promise.all(Array.from({ length: CLIENTS }, () => fetchBlob(url, { deadlineMs: 30_000 })));
    proxy.dripBlobs = undefined;
    proxy.corruptBlobs = false;
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.timedOut).toBe(false);
      // Cut: never the whole length, so never a complete wrong body.
      expect(a.complete).toBe(false);
      expect(a.body.length).toBeLessThan(layer.body.length);
    }
    expect((await handover()).followed - before.followed).toBeGreaterThan(0);
    expect(await upstreamGets(`/v2/library/${name}/blobs/${layer.digest}`)).toBe(1);
    // Nothing was cached: the next request fills again, this time from honest bytes.
    const again = await fetchBlob(url, { deadlineMs: 30_000 });
    expect(again.complete).toBe(true);
    expect(again.headers['x-wharf-cache']).toBe('miss');
    expect(sha(again.body)).toBe(layer.digest);
    expect(await upstreamGets(`/v2/library/${name}/blobs/${layer.digest}`)).toBe(2);
  });

  it('gives a client that sends the internal header itself a normal answer, on either thread', async () => {
    const { name, layer } = await pushed();
    proxy.dripBlobs = DRIP;
    const url = `${wharf.url}/v2/${name}/blobs/${layer.digest}`;
    const forged = { 'x-wharf-follows-fills': '1', 'x-wharf-forward-secret': 'guessed', 'x-wharf-client-address': '10.0.0.1' };
    const answers = await Promise.all(Array.from({ length: CLIENTS }, () => fetchBlob(url, { headers: forged, deadlineMs: 30_000 })));
    proxy.dripBlobs = undefined;
    expectWholeBlobs(answers, layer);
    expect(await upstreamGets(`/v2/library/${name}/blobs/${layer.digest}`)).toBe(1);
  });
});
