// Carrying images into an air-gapped network: export from one wharf, import into a second one
// that has no upstream at all (offline), pull with skopeo. Corrupt and truncated bundles load
// nothing wrong, and the import says what was bad.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, makeIndex } from '../support/test-images.ts';
import { pushImage, pushIndex } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { EmbeddedManifestStore } from '../../src/cache/embedded-manifest-store.ts';
import { runWharfCli, startWharfProcess } from '../support/wharf-process.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { Skopeo } from '../support/skopeo.ts';
import { Podman } from '../support/podman.ts';
import { startContainerd } from '../support/containerd.ts';
import { exampleHostsDir, exampleRegistriesConf } from '../support/client-examples.ts';
import { makeReferrer, descriptorOf } from '../support/oci-artifacts.ts';

const amd64 = makeImage({ name: 'bundle', files: { arch: 'amd64\n' }, arch: 'amd64', extraLayerBytes: 300 << 10 });
const arm64 = makeImage({ name: 'bundle', files: { arch: 'arm64\n' }, arch: 'arm64', extraLayerBytes: 300 << 10 });
const multi = makeIndex([amd64, arm64], 'oci');
const tool = makeImage({ name: 'bundle-tool', files: { 't.txt': 'tool\n' }, mediaType: 'docker', extraLayerBytes: 200 << 10 });
const sbom = makeReferrer({ artifactType: 'application/spdx+json', layerType: 'application/spdx+json', content: '{"spdxVersion":"SPDX-2.3"}', subject: tool.manifest });

describe('export and import (air-gapped wharf)', () => {
  let upstream: UpstreamRegistry;
  let online: TestWharf;
  let dir: TempDir;
  let skopeo: Skopeo;
  let bundle: string;
  /** tool:v2 and its SBOM (tagged v2-sbom, subject tool:v2), in a bundle of their own. */
  let referrersBundle: string;

  /** A config for an air-gapped wharf: offline, no upstream configured, its own data dir. */
  async function airGappedConfig(name: string): Promise<{ config: string; dataDir: string }> {
    const dataDir = join(dir.path, `${name}-data`);
    const config = join(dir.path, `${name}.yaml`);
    await writeFile(config, stringify({ listen: '127.0.0.1:0', dataDir, offline: true }));
    return { config, dataDir };
  }

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushIndex(upstream.url, 'library/multi', '1.0', multi, [amd64, arm64]);
    await pushImage(upstream.url, 'team/tool', 'v2', tool);
    await pushImage(upstream.url, 'team/tool', 'v2-sbom', sbom);
    dir = await makeTempDir('wharf-bundle-');
    skopeo = await Skopeo.create();
    const onlineData = join(dir.path, 'online-data');
    online = await startWharf({ dataDir: onlineData, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }, { name: 'ghcr.io', url: upstream.url }] });
    await skopeo.copy(`docker://${online.host}/library/multi:1.0`, { all: true });
    await skopeo.copy(`docker://${online.host}/ghcr.io/team/tool:v2`);
    await skopeo.copy(`docker://${online.host}/ghcr.io/team/tool:v2-sbom`);
    await online.close(2000);
    const onlineConfig = join(dir.path, 'online.yaml');
    await writeFile(onlineConfig, stringify({ dataDir: onlineData, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }, { name: 'ghcr.io', url: upstream.url }] }));
    bundle = join(dir.path, 'images.tar');
    const exported = await runWharfCli(['export', '-c', onlineConfig, '-o', bundle, 'multi:1.0', 'ghcr.io/team/tool:v2']);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain('exported 2 images');
    referrersBundle = join(dir.path, 'referrers.tar');
    const withSbom = await runWharfCli(['export', '-c', onlineConfig, '-o', referrersBundle, 'ghcr.io/team/tool:v2', 'ghcr.io/team/tool:v2-sbom']);
    expect(withSbom.code, withSbom.stderr).toBe(0);
  });

  afterAll(async () => {
    await upstream?.stop();
    await skopeo?.cleanup();
    await dir?.cleanup();
  });

  it('imports into a wharf with no upstream and serves the images to skopeo, podman and ctr, digests unchanged', async () => {
    const { config, dataDir } = await airGappedConfig('airgap');
    const imported = await runWharfCli(['import', '-c', config, bundle]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('imported 2 images');
    // Each image's content is linked to the repository the bundle names, and to no other.
    const store = new EmbeddedManifestStore(join(dataDir, 'manifests'));
    const toolRepo = { upstream: 'ghcr.io', repository: 'team/tool' };
    for (const digest of [tool.manifest.digest, tool.config.digest, ...tool.layers.map((l) => l.digest)]) expect(await store.hasLink(toolRepo, digest)).toBe(true);
    for (const digest of [multi.digest, arm64.manifest.digest, ...arm64.layers.map((l) => l.digest)]) expect(await store.hasLink({ upstream: 'docker.io', repository: 'library/multi' }, digest)).toBe(true);
    expect(await store.hasLink({ upstream: 'docker.io', repository: 'library/multi' }, tool.config.digest)).toBe(false);
    // The same config serves: offline, no upstream configured.
    const airgap = startWharfProcess(['serve', '--config', config]);
    try {
      const host = new URL(await airgap.listening()).host;
      const all = await skopeo.copy(`docker://${host}/library/multi:1.0`, { all: true });
      expect(all.index.manifests[0]?.digest).toBe(multi.digest);
      const raw = await skopeo.inspectRaw(`docker://${host}/ghcr.io/team/tool:v2`);
      expect(raw.equals(tool.manifest.body)).toBe(true);
      await skopeo.copy(`docker://${host}/ghcr.io/team/tool:v2`);
      // podman and containerd too, configured as the shipped examples say.
      const podman = await Podman.create(await exampleRegistriesConf(host));
      try {
        expect(await podman.pull('ghcr.io/team/tool:v2')).toBe(tool.manifest.digest);
      } finally {
        await podman.cleanup();
      }
      const containerd = await startContainerd();
      try {
        const hostsDir = await exampleHostsDir(await containerd.workDir('hosts'), host);
        expect((await containerd.pull('docker.io/library/multi:1.0', { hostsDir, platform: 'linux/arm64' })).digest).toBe(multi.digest);
      } finally {
        await containerd.stop();
      }
    } finally {
      airgap.child.kill('SIGTERM');
      await airgap.exited;
    }
  });

  it('lists an imported signature or SBOM among its subject\'s referrers, with no upstream to ask', async () => {
    const { config } = await airGappedConfig('referrers');
    const imported = await runWharfCli(['import', '-c', config, referrersBundle]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('imported 2 images');
    const airgap = startWharfProcess(['serve', '--config', config]);
    try {
      const url = await airgap.listening();
      const res = await fetch(`${url}/v2/ghcr.io/team/tool/referrers/${tool.manifest.digest}`);
      expect(res.status).toBe(200);
      const list = (await res.json()) as { manifests: Array<Record<string, unknown>> };
      expect(list.manifests).toEqual([expect.objectContaining(descriptorOf(sbom))]);
      // Under no other repository: the bundle named team/tool.
      const elsewhere = await fetch(`${url}/v2/library/multi/referrers/${tool.manifest.digest}`);
      expect(((await elsewhere.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    } finally {
      airgap.child.kill('SIGTERM');
      await airgap.exited;
    }
  });

  it('rejects a blob whose bytes were changed, and tags nothing that needs it', async () => {
    const tar = await readFile(bundle);
    // Flip a byte deep inside the big amd64 layer's entry.
    const layerHex = amd64.layers.at(-1)!.digest.slice('sha256:'.length);
    const at = tar.indexOf(`blobs/sha256/${layerHex}`);
    expect(at).toBeGreaterThan(0);
    const corrupt = Buffer.from(tar);
    corrupt[at + 512 + 1000]! ^= 0xff;
    const file = join(dir.path, 'corrupt.tar');
    await writeFile(file, corrupt);
    const { config } = await airGappedConfig('corrupt');
    const result = await runWharfCli(['import', '-c', config, file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`error: blob ${amd64.layers.at(-1)!.digest}: its bytes hash to`);
    expect(result.stderr).toMatch(/multi:1\.0: incomplete .* not tagged/);
    // The other image was whole: it is tagged.
    expect(result.stdout).toContain('ghcr.io/team/tool:v2: tagged');
  });

  it('says a truncated bundle is truncated and tags only what arrived whole', async () => {
    const tar = await readFile(bundle);
    const file = join(dir.path, 'truncated.tar');
    await writeFile(file, tar.subarray(0, Math.floor(tar.length / 2)));
    const { config } = await airGappedConfig('truncated');
    const result = await runWharfCli(['import', '-c', config, file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/error: the bundle is truncated or not a tar file/);
    expect(result.stdout).not.toContain('multi:1.0: tagged');
  });
});
