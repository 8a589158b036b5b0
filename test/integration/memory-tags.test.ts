// The serving manifest store holds as many tag records in memory as cache.memoryManifests
// allows manifests (at least 10 000): raising memoryManifests for a cache of many tags must make
// their lookups memory hits too, not only their manifests.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.ts';
import { openManifestStore } from '../../src/cache/open-stores.ts';
import { createLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

const dirs: TempDir[] = [];
afterEach(async () => Promise.all(dirs.splice(0).map((d) => d.cleanup())));

async function storeWith(memoryManifests: number) {
  const dir = await makeTempDir('wharf-memory-tags-');
  dirs.push(dir);
  const file = join(dir.path, 'wharf.yaml');
  await writeFile(file, `dataDir: ${join(dir.path, 'data')}\ncache:\n  memoryManifests: ${memoryManifests}\nupstreams:\n  - { name: docker.io, url: "http://127.0.0.1:9", default: true }\n`);
  const config = await loadConfig({ path: file, env: {} });
  return openManifestStore(config, createLogger('silent'), new Metrics({ processMetrics: false }));
}

const repo = { upstream: 'docker.io', repository: 'bench/many' };
const record = (i: number) => ({ digest: `sha256:${i.toString(16).padStart(64, '0')}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', fetchedAt: Date.now() });

async function heldOf(memoryManifests: number, tags: number): Promise<number> {
  const store = await storeWith(memoryManifests);
  try {
    for (let i = 0; i < tags; i++) await store.putTag(repo, `t${i}`, record(i));
    let held = 0;
    for (let i = 0; i < tags; i++) if (store.peekTag(repo, `t${i}`)) held++;
    return held;
  } finally {
    await store.close();
  }
}

describe('tag records in memory', () => {
  it('follow memoryManifests above 10 000', async () => {
    expect(await heldOf(12_000, 11_000)).toBe(11_000);
  }, 60_000);

  it('are 10 000 at least', async () => {
    expect(await heldOf(100, 10_500)).toBe(10_000);
  }, 60_000);
});
