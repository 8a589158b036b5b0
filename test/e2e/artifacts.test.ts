// OCI artifacts pull through wharf with a real client: skopeo copies a Helm chart (its own
// config media type), an SBOM and a signature (artifactType, the empty config, a subject) from
// registry 2.8 through wharf into OCI layouts, with every digest the one pushed; an artifact
// skopeo pulled then shows in the subject's referrers, answered by wharf.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, type TestImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { Skopeo } from '../support/skopeo.ts';
import { EMPTY_CONFIG, HELM_CHART, HELM_CONFIG, makeHelmChart, makeReferrer } from '../support/oci-artifacts.ts';

const image = makeImage({ name: 'app', files: { 'app.txt': 'the app\n' } });
const chart = makeHelmChart('wharf-demo', '0.1.0');
const sbom = makeReferrer({ artifactType: 'application/spdx+json', layerType: 'application/spdx+json', content: '{"spdxVersion":"SPDX-2.3","name":"app"}', subject: image.manifest });
const signature = makeReferrer({
  artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  layerType: 'application/vnd.dev.cosign.simplesigning.v1+json',
  content: '{"critical":{"identity":{"docker-reference":"app"}}}',
  subject: image.manifest,
});

async function expectLayoutHolds(dir: string, artifact: TestImage): Promise<void> {
  for (const blob of [artifact.manifest, artifact.config, ...artifact.layers]) {
    const body = await readFile(join(dir, 'blobs', 'sha256', blob.digest.slice('sha256:'.length)));
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(blob.digest);
    expect(body.equals(blob.body)).toBe(true);
  }
}

describe('OCI artifacts through wharf (skopeo)', () => {
  let registry: UpstreamRegistry;
  let wharf: TestWharf;
  let skopeo: Skopeo;

  beforeAll(async () => {
    registry = await startUpstreamRegistry();
    await pushImage(registry.url, 'charts/wharf-demo', '0.1.0', chart);
    await pushImage(registry.url, 'library/app', 'latest', image);
    await pushImage(registry.url, 'library/app', 'sbom', sbom);
    await pushImage(registry.url, 'library/app', 'sig', signature);
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: registry.url, default: true }] });
    skopeo = await Skopeo.create();
  });

  afterAll(async () => {
    await skopeo?.cleanup();
    await wharf?.stop();
    await registry?.stop();
  });

  it('copies a Helm chart (config application/vnd.cncf.helm.config.v1+json) byte for byte', async () => {
    const { dir, index } = await skopeo.copy(`docker://${wharf.host}/charts/wharf-demo:0.1.0`);
    expect(index.manifests.map((m) => m.digest)).toEqual([chart.manifest.digest]);
    await expectLayoutHolds(dir, chart);
    expect(chart.config.mediaType).toBe(HELM_CONFIG);
    expect(chart.layers[0]!.mediaType).toBe(HELM_CHART);
    // And by digest, as helm pull name@digest asks.
    const byDigest = await skopeo.copy(`docker://${wharf.host}/charts/wharf-demo@${chart.manifest.digest}`);
    expect(byDigest.index.manifests.map((m) => m.digest)).toEqual([chart.manifest.digest]);
  });

  it('copies an SBOM and a signature (artifactType, empty config, subject), and lists them as the image referrers', async () => {
    for (const [tag, artifact] of [['sbom', sbom], ['sig', signature]] as const) {
      const { dir, index } = await skopeo.copy(`docker://${wharf.host}/library/app:${tag}`);
      expect(index.manifests.map((m) => m.digest)).toEqual([artifact.manifest.digest]);
      expect(artifact.config.mediaType).toBe(EMPTY_CONFIG);
      await expectLayoutHolds(dir, artifact);
      expect((await skopeo.inspectRaw(`docker://${wharf.host}/library/app:${tag}`)).equals(artifact.manifest.body)).toBe(true);
    }
    // registry 2.8 has no referrers API and nobody pushed the tag schema's index: the answer is
    // what wharf holds with that subject, the two artifacts skopeo just pulled.
    let listed: string[] = [];
    for (let i = 0; i < 50 && listed.length < 2; i++) {
      const res = await fetch(`${wharf.url}/v2/library/app/referrers/${image.manifest.digest}`);
      expect(res.status).toBe(200);
      listed = ((await res.json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest).sort();
      if (listed.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    expect(listed).toEqual([sbom.manifest.digest, signature.manifest.digest].sort());
  });
});
