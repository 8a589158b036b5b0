// dockerd with `registry-mirrors` (daemon.json): no dockerd runs here, so this replays the
// requests dockerd makes to a mirror (shared/reference/protocol.md §3.1, §3.2) in its order,
// with its headers: ping, tag HEAD with every manifest type, manifest by digest, blobs. The
// containerd image store sends the same with ?ns=docker.io.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { exampleDaemonJson } from '../support/client-examples.ts';

const image = makeImage({ name: 'dockerd', files: { 'd.txt': 'as dockerd pulls\n' }, mediaType: 'docker', extraLayerBytes: 128 << 10 });
const DOCKERD_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/json',
].join(', ');

describe.each([
  ['classic graph-driver store', ''],
  ['containerd image store', '?ns=docker.io'],
])('dockerd registry-mirrors (%s)', (_name, query) => {
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  /** The mirror URL from the shipped daemon.json, pointed at this wharf. */
  let mirror: string;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/busybox', '1.36', image);
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
    const daemon = await exampleDaemonJson(wharf.host);
    expect(daemon['insecure-registries']).toEqual([wharf.host]);
    mirror = daemon['registry-mirrors'][0]!;
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  it('answers the ping without an auth challenge, so dockerd sends the mirror no Hub credentials', async () => {
    const ping = await fetch(`${mirror}/v2/`);
    expect(ping.status).toBe(200);
    expect(ping.headers.get('www-authenticate')).toBeNull();
  });

  it('resolves the tag with HEAD, then serves manifest and blobs by digest, byte for byte', async () => {
    const head = await fetch(`${mirror}/v2/library/busybox/manifests/1.36${query}`, { method: 'HEAD', headers: { accept: DOCKERD_ACCEPT } });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(image.manifest.digest);
    expect(head.headers.get('content-type')).toBe(image.manifest.mediaType);
    expect(head.headers.get('content-length')).toBe(String(image.manifest.body.length));
    const manifest = await fetch(`${mirror}/v2/library/busybox/manifests/${image.manifest.digest}${query}`, { headers: { accept: DOCKERD_ACCEPT } });
    expect(Buffer.from(await manifest.arrayBuffer()).equals(image.manifest.body)).toBe(true);
    for (const blob of [image.config, ...image.layers]) {
      const res = await fetch(`${mirror}/v2/library/busybox/blobs/${blob.digest}${query}`);
      expect(res.status).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(blob.digest);
    }
  });
});
