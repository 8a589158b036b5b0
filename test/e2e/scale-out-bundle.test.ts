// Bundles in a scaled-out site: `wharf export` on a machine whose disk holds none of the blobs
// exports them from S3, and `wharf import` into an air-gapped cluster publishes every verified
// blob to its S3 bucket, so a replica started with an empty disk serves the images offline.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startS3Server, type S3Server } from '../support/s3-server.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { startWharf } from '../support/wharf.ts';
import { runWharfCli } from '../support/wharf-process.ts';
import { sha256 } from '../support/test-images.ts';

const image = makeImage({ name: 'scale-bundle', files: { 'b.txt': 'bundled\n' }, extraLayerBytes: 400 << 10 });
const blobs = [image.config, ...image.layers];

describe('bundles with blobs on S3', () => {
  let upstream: UpstreamRegistry;
  let redis: RedisServer;
  let s3: S3Server;
  let dir: TempDir;

  /** A site: its Redis key prefix and S3 prefix, a data dir of its own. */
  const site = (name: string, extra: Record<string, unknown> = {}) => ({
    dataDir: join(dir.path, `${name}-data-${Math.random().toString(36).slice(2)}`),
    redis: { url: redis.url, keyPrefix: `${name}:` },
    blobs: { s3: { endpoint: s3.endpoint, bucket: s3.bucket, prefix: `${name}/`, forcePathStyle: true, accessKeyIdFile: join(dir.path, 'id'), secretAccessKeyFile: join(dir.path, 'secret') } },
    ...extra,
  });
  const configFile = async (name: string, config: Record<string, unknown>) => {
    const file = join(dir.path, `${name}.yaml`);
    await writeFile(file, stringify(config));
    return file;
  };

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/app', 'v1', image);
    redis = await startRedisServer();
    s3 = await startS3Server();
    dir = await makeTempDir('wharf-scale-bundle-');
    await writeFile(join(dir.path, 'id'), s3.accessKeyId);
    await writeFile(join(dir.path, 'secret'), s3.secretAccessKey);
  });

  afterAll(async () => {
    await s3?.stop();
    await redis?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('exports from S3 on a disk that holds nothing, and imports into an air-gapped cluster through S3', async () => {
    const upstreams = [{ name: 'docker.io', url: upstream.url, default: true }];
    // The connected site pulls the image once; its blobs reach S3.
    const online = await startWharf({ upstreams, ...site('online') });
    const m = await fetch(`${online.url}/v2/library/app/manifests/v1`, { headers: { accept: image.manifest.mediaType } });
    expect(m.status).toBe(200);
    for (const blob of blobs) expect(sha256(Buffer.from(await (await fetch(`${online.url}/v2/library/app/blobs/${blob.digest}`)).arrayBuffer()))).toBe(blob.digest);
    await online.deps.blobs.settled(); // published to S3
    await online.stop();

    // Another machine of that site, with an empty disk, exports it.
    const bundle = join(dir.path, 'app.tar');
    const exporter = await configFile('exporter', { ...site('online'), upstreams });
    const exported = await runWharfCli(['export', '-c', exporter, '-o', bundle, 'app:v1']);
    expect(exported.code, exported.stderr).toBe(0);

    // The air-gapped cluster imports it on one machine...
    const importer = await configFile('importer', { ...site('airgap'), offline: true });
    const imported = await runWharfCli(['import', '-c', importer, bundle]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('imported 1 image');

    // ...and a replica with an empty disk serves it, offline, from Redis and S3.
    const replica = await startWharf({ upstreams: [], ...site('airgap', { offline: true }) });
    try {
      const res = await fetch(`${replica.url}/v2/library/app/manifests/v1`, { headers: { accept: image.manifest.mediaType } });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(image.manifest.body)).toBe(true);
      for (const blob of blobs) {
        const b = await fetch(`${replica.url}/v2/library/app/blobs/${blob.digest}`);
        expect(b.status).toBe(200);
        expect(sha256(Buffer.from(await b.arrayBuffer()))).toBe(blob.digest);
      }
    } finally {
      await replica.stop();
    }
  });

  // After the test above: the image's records are in Redis, its blobs only on S3.
  it('fails an export, saying why, when S3 cannot be reached', async () => {
    const broken = { ...site('online'), upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] };
    (broken.blobs.s3 as Record<string, unknown>).endpoint = 'http://127.0.0.1:9';
    const result = await runWharfCli(['export', '-c', await configFile('broken', broken), '-o', join(dir.path, 'x.tar'), 'app:v1']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/app:v1: s3 head failed: .*ECONNREFUSED/);
  });
});
