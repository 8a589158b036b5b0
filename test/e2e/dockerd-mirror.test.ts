// A real dockerd (Debian's docker.io, 20.10; test/support/dockerd.ts) with the shipped
// daemon.json (config/examples/clients/daemon.json: `registry-mirrors` and `insecure-registries`)
// pointed at a plain-HTTP wharf on 127.0.0.1, pulling a Docker Hub name the way a build host
// does. wharf's upstream is the reference registry behind a TCP fault switch, so the test can
// take the upstream away. What it checks, in order: the first pull goes through wharf and fills
// it; after `docker rmi` a second pull downloads every blob again, from wharf, with not one blob
// GET reaching the upstream; with the upstream refusing connections and the tag past its TTL, a
// third pull still succeeds, the tag served stale from wharf's cache. dockerd falls back to
// Docker Hub when a mirror fails: the harness refuses and counts that, so a pull that bypassed
// wharf fails here instead of passing.
//
// dockerd 20.10 has no containerd image store (that came as an experimental feature later), so
// the `?ns=docker.io` requests that store sends are not sent here; ctr/containerd's mirror
// resolver sends them, and test/e2e/containerd.test.ts pulls docker.io/library names through
// wharf with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startTcpFaults, type TcpFaults } from '../support/tcp-faults.ts';
import { exampleDaemonJson } from '../support/client-examples.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { LogLines } from '../support/log-lines.ts';
import { metricValue } from '../support/metrics.ts';

const NAME = 'wharfmirror';
const TAG = '1.0';
const image = makeImage({ name: 'dockerd-mirror', files: { 'd.txt': 'as dockerd pulls\n' }, mediaType: 'docker', extraLayerBytes: 128 << 10 });
const blobs = [image.config, ...image.layers].map((b) => b.digest);
const TAG_TTL_SECONDS = 1;

interface Inspected {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
}

describe('real dockerd with the shipped daemon.json (registry-mirrors) pulls a Docker Hub name through wharf', () => {
  let upstream: UpstreamRegistry;
  let faults: TcpFaults;
  let wharf: TestWharf;
  let dockerd: Dockerd;
  const logs = new LogLines();

  /** Blob GETs the upstream answered from `since` on (the log also holds the test's push). */
  const upstreamBlobGets = async (since: number) => {
    await upstream.settleLog();
    return upstream.requestLog().slice(since).filter((e) => e.method === 'GET' && e.path.includes('/blobs/'));
  };
  /** wharf's access-log lines from line `since` on for this repository. */
  const served = (since: number, kind: 'manifests' | 'blobs') =>
    logs.lines.slice(since).filter((l) => l.msg === 'request' && String(l.url).startsWith(`/v2/library/${NAME}/${kind}/`));

  /** docker pull by the Hub name, then what dockerd recorded: the image ID is the config digest. */
  const pullAndInspect = async () => {
    const { stdout } = await dockerd.docker(['pull', `library/${NAME}:${TAG}`]);
    expect(stdout).toContain(`Digest: ${image.manifest.digest}`);
    const [inspected] = JSON.parse((await dockerd.docker(['image', 'inspect', `${NAME}:${TAG}`])).stdout) as Inspected[];
    expect(inspected!.Id).toBe(image.config.digest);
    expect(inspected!.RepoTags).toContain(`${NAME}:${TAG}`);
    expect(inspected!.RepoDigests).toContain(`${NAME}@${image.manifest.digest}`);
  };

  /** Removes the image and its layers from dockerd, so the next pull downloads every blob. */
  const rmi = async () => {
    await dockerd.docker(['rmi', `${NAME}:${TAG}`]);
    await expect(dockerd.docker(['image', 'inspect', `${NAME}:${TAG}`])).rejects.toThrow(/no such image/i);
  };

  /** Every blob GET wharf answered 200 in these lines, by digest. */
  const servedBlobs = (lines: Array<Record<string, unknown>>) =>
    lines.filter((l) => l.method === 'GET' && l.status === 200).map((l) => String(l.url).split('/blobs/')[1]);

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, `library/${NAME}`, TAG, image);
    faults = await startTcpFaults({ host: '127.0.0.1', port: upstream.port });
    wharf = await startWharf({
      logLevel: 'info',
      logDestination: logs,
      upstreams: [{ name: 'docker.io', url: faults.url, default: true }],
      tagTtlSeconds: TAG_TTL_SECONDS,
      resilience: { staleAfterMs: 1500, breaker: { openMs: 300, maxOpenMs: 1000 } },
    });
    // Exactly what users copy, with wharf's address: the mirror and, for plain HTTP, its
    // insecure-registries entry.
    const daemonJson = await exampleDaemonJson(wharf.host);
    expect(daemonJson).toEqual({ 'registry-mirrors': [`http://${wharf.host}`], 'insecure-registries': [wharf.host] });
    dockerd = await startDockerd({ daemonJson });
  });

  afterAll(async () => {
    await dockerd?.stop();
    await wharf?.stop();
    await faults?.stop();
    await upstream?.stop();
  });

  it('answers the ping without an auth challenge, so dockerd sends the mirror no Hub credentials', async () => {
    const ping = await fetch(`http://${wharf.host}/v2/`);
    expect(ping.status).toBe(200);
    expect(ping.headers.get('www-authenticate')).toBeNull();
  });

  it('pulls library/<name>:<tag> through the mirror: image ID and digest as pushed, every blob from wharf, filled from the upstream', async () => {
    await upstream.settleLog();
    const since = upstream.requestLog().length;
    const linesBefore = logs.lines.length;
    await pullAndInspect();
    // wharf's access log has dockerd's requests (its user agent, from loopback) ...
    await logs.waitFor((l) => l.msg === 'request' && String(l.url).endsWith(image.layers.at(-1)!.digest), { since: linesBefore });
    const manifests = served(linesBefore, 'manifests');
    expect(manifests.some((l) => l.url === `/v2/library/${NAME}/manifests/${TAG}` && l.status === 200)).toBe(true);
    expect(manifests.every((l) => String(l.userAgent).startsWith('docker/20.10') && l.client === '127.0.0.1')).toBe(true);
    expect(servedBlobs(served(linesBefore, 'blobs')).sort()).toEqual([...blobs].sort());
    // ... which wharf filled from the upstream, and dockerd tried nothing beyond the mirror.
    expect((await upstreamBlobGets(since)).map((e) => e.path.split('/blobs/')[1]).sort()).toEqual([...blobs].sort());
    expect(dockerd.outsideConnections()).toBe(0);
  });

  it('after docker rmi, pulls again with every blob from wharf and zero blob GETs upstream', async () => {
    await rmi();
    await upstream.settleLog();
    const since = upstream.requestLog().length;
    const linesBefore = logs.lines.length;
    await pullAndInspect();
    await logs.waitFor((l) => l.msg === 'request' && String(l.url).endsWith(image.layers.at(-1)!.digest), { since: linesBefore });
    // dockerd really downloaded the blobs again (not a leftover in its store), and wharf
    // answered each from its cache ...
    const blobLines = served(linesBefore, 'blobs').filter((l) => l.method === 'GET');
    expect(servedBlobs(blobLines).sort()).toEqual([...blobs].sort());
    expect(blobLines.every((l) => l.cache === 'hit')).toBe(true);
    // ... so not one blob GET reached the upstream (the tag may be revalidated there).
    expect(await upstreamBlobGets(since)).toEqual([]);
    expect(dockerd.outsideConnections()).toBe(0);
  });

  it('with the upstream refusing connections, pulls again from the cache: the tag served stale', async () => {
    await rmi();
    await faults.setMode({ kind: 'refuse' });
    // The upstream's address refuses connections now, as a crashed registry's does.
    await expect(fetch(`${faults.url}/v2/`)).rejects.toThrow();
    // Past the tag's TTL, so wharf must ask the upstream and, failing, answer stale.
    await new Promise((r) => setTimeout(r, TAG_TTL_SECONDS * 1000 + 200));
    const staleBefore = await metricValue(wharf.url, 'wharf_stale_served_total', { kind: 'manifest' });
    const linesBefore = logs.lines.length;
    await pullAndInspect();
    await logs.waitFor((l) => l.msg === 'request' && String(l.url).endsWith(image.layers.at(-1)!.digest), { since: linesBefore });
    const tagLines = served(linesBefore, 'manifests').filter((l) => l.url === `/v2/library/${NAME}/manifests/${TAG}`);
    expect(tagLines.length).toBeGreaterThan(0);
    expect(tagLines.every((l) => l.status === 200 && l.cache === 'stale')).toBe(true);
    expect(await metricValue(wharf.url, 'wharf_stale_served_total', { kind: 'manifest' })).toBeGreaterThan(staleBefore);
    // dockerd got everything from the mirror, nothing from elsewhere.
    expect(servedBlobs(served(linesBefore, 'blobs')).sort()).toEqual([...blobs].sort());
    expect(dockerd.outsideConnections()).toBe(0);
  });
});
