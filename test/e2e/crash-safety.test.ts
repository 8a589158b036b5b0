// kill -9 in the middle of fills: the cache may lose the blobs that were filling, but it never
// holds one whose bytes do not match its name; leftovers are cleaned at the next start and
// the next request fills again.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage, sha256 } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startTcpFaults, type TcpFaults } from '../support/tcp-faults.ts';
import { startWharfProcess, type WharfProcess } from '../support/wharf-process.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

const images = [0, 1, 2].map((i) => makeImage({ name: `crash-${i}`, files: { 'c.txt': `crash ${i}\n` }, extraLayerBytes: 6 << 20 }));
const layers = images.map((image) => image.layers.at(-1)!);

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** Every committed blob as [name, digest of its bytes]. */
async function committed(dataDir: string): Promise<Array<[string, string]>> {
  const root = join(dataDir, 'blobs', 'sha256');
  const out: Array<[string, string]> = [];
  for (const shard of await readdir(root).catch(() => [])) {
    for (const hex of await readdir(join(root, shard))) out.push([`sha256:${hex}`, await fileDigest(join(root, shard, hex))]);
  }
  return out;
}

describe('kill -9 during fills', () => {
  let upstream: UpstreamRegistry;
  let link: TcpFaults;
  let dir: TempDir;
  let config: string;
  let wharf: WharfProcess | undefined;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    for (const [i, image] of images.entries()) await pushImage(upstream.url, `library/crash${i}`, 'latest', image);
    link = await startTcpFaults({ host: '127.0.0.1', port: upstream.port });
    link.setBandwidth(4 << 20); // each 6 MiB blob takes 1.5 s: time to kill mid-fill
    dir = await makeTempDir('wharf-crash-');
    config = join(dir.path, 'wharf.yaml');
    await writeFile(
      config,
      `listen: 127.0.0.1:0\ndataDir: ${join(dir.path, 'data')}\nupstreams:\n  - { name: docker.io, url: "${link.url}", default: true }\n`,
    );
  });

  afterAll(async () => {
    if (wharf && wharf.child.exitCode === null) {
      wharf.child.kill('SIGTERM');
      await wharf.exited;
    }
    await link?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('leaves no blob that does not match its digest, cleans up at start and refills', async () => {
    wharf = startWharfProcess(['serve', '--config', config]);
    let url = await wharf.listening();
    // Three fills at once, each read partly by its client.
    await Promise.all(
      layers.map(async (layer, i) => {
        const res = await request(`${url}/v2/library/crash${i}/blobs/${layer.digest}`);
        let got = 0;
        for await (const chunk of res.body) {
          got += (chunk as Buffer).length;
          if (got > 1 << 20) break;
        }
      }),
    );
    process.kill(wharf.pid, 'SIGKILL');
    expect(await wharf.exited).toBeNull();
    const tmp = join(dir.path, 'data', 'blobs', 'tmp');
    expect((await readdir(tmp)).length).toBeGreaterThan(0);
    for (const [name, actual] of await committed(join(dir.path, 'data'))) expect(actual).toBe(name);
    expect((await committed(join(dir.path, 'data'))).map(([name]) => name)).not.toContain(layers[0]!.digest);

    wharf = startWharfProcess(['serve', '--config', config]);
    url = await wharf.listening();
    expect(await readdir(tmp)).toEqual([]);
    for (const [i, layer] of layers.entries()) {
      const res = await request(`${url}/v2/library/crash${i}/blobs/${layer.digest}`);
      expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(layer.digest);
    }
    wharf.child.kill('SIGTERM'); // a clean stop lets the fills commit
    expect(await wharf.exited).toBe(0);
    const after = await committed(join(dir.path, 'data'));
    for (const [name, actual] of after) expect(actual).toBe(name);
    expect(after.map(([name]) => name)).toEqual(expect.arrayContaining(layers.map((l) => l.digest)));
  });
});
