// Referrers (OCI distribution 1.1): passed through with the exact index bytes and filter header
// from an upstream that has the API, and a 404 only from one that has none (registry 2.8).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';

const image = makeImage({ name: 'referred', files: { 'r.txt': 'referred to\n' } });
const subject = image.manifest.digest;
const referrersIndex = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'ab'.repeat(32)}`, size: 321, artifactType: 'application/vnd.example.sbom' }],
  }),
);

describe('referrers through wharf', () => {
  let registry: UpstreamRegistry;
  let withApi: Server;
  const asked: string[] = [];
  let wharf: TestWharf;

  beforeAll(async () => {
    registry = await startUpstreamRegistry();
    await pushImage(registry.url, 'library/referred', 'latest', image);
    // distribution 2.8 has no referrers API; this loopback server answers it as 1.1 registries do.
    withApi = createServer((req, res) => {
      asked.push(req.url ?? '');
      if (!req.url?.startsWith(`/v2/owner/app/referrers/${subject}`)) return res.writeHead(404).end();
      const filtered = new URL(req.url, 'http://x').searchParams.has('artifactType');
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.index.v1+json',
        ...(filtered ? { 'oci-filters-applied': 'artifactType' } : {}),
      });
      res.end(referrersIndex);
    });
    await new Promise<void>((r) => withApi.listen(0, '127.0.0.1', r));
    wharf = await startWharf({
      upstreams: [
        { name: 'docker.io', url: registry.url, default: true },
        { name: 'ghcr.io', url: `http://127.0.0.1:${(withApi.address() as AddressInfo).port}` },
      ],
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await registry?.stop();
    await new Promise((r) => withApi?.close(r));
  });

  it('passes the upstream index through byte for byte, with the artifactType filter', async () => {
    const res = await fetch(`${wharf.url}/v2/ghcr.io/owner/app/referrers/${subject}?artifactType=application/vnd.example.sbom`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(Buffer.from(await res.arrayBuffer()).equals(referrersIndex)).toBe(true);
    expect(asked.at(-1)).toBe(`/v2/owner/app/referrers/${subject}?artifactType=application%2Fvnd.example.sbom`);
  });

  it('answers 404 when the upstream has no referrers API, so clients fall back to the tag schema', async () => {
    const res = await fetch(`${wharf.url}/v2/library/referred/referrers/${subject}`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { errors: Array<{ code: string }> };
    expect(body.errors[0]?.code).toBe('UNSUPPORTED');
  });

  it('rejects a malformed digest at the edge', async () => {
    const res = await fetch(`${wharf.url}/v2/library/referred/referrers/sha256:nothex`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('DIGEST_INVALID');
  });
});
