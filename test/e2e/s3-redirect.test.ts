// blobs.s3.redirect (opt-in): a replica whose disk lacks a blob that S3 holds answers its GET
// with a 307 to a presigned URL on the public S3 endpoint, and the client gets the verified
// bytes (or a Range of them) from S3 itself. Never for a repository that does not reference the
// blob, never for a blob still filling; off by default, when wharf streams the blob itself.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBlobUpstream, type BlobUpstream } from '../support/blob-upstream.ts';
import { startS3Server, type S3Server } from '../support/s3-server.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { pseudoRandomBytes, sha256 } from '../support/test-images.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { until } from '../support/until.ts';
import { startTcpFaults, type TcpFaults } from '../support/tcp-faults.ts';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/cache/s3-client.ts';

const body = pseudoRandomBytes('redirect-blob', 3 << 20);

describe('presigned redirects to S3', () => {
  let upstream: BlobUpstream;
  let s3: S3Server;
  let keys: TempDir;
  let filler: TestWharf;
  let redirecting: TestWharf;
  let digest: string;
  let publicS3: TcpFaults;

  beforeAll(async () => {
    upstream = await startBlobUpstream();
    digest = upstream.serve(body, { kind: 'whole' }, ['library/app']);
    // radosgw checks signatures: a URL presigned for the wrong host or key would be refused.
    s3 = await startS3Server({ server: 'radosgw' });
    keys = await makeTempDir('wharf-s3-keys-');
    await writeFile(join(keys.path, 'id'), s3.accessKeyId);
    await writeFile(join(keys.path, 'secret'), s3.secretAccessKey);
    const s3Block = (redirect: Record<string, unknown>) => ({
      s3: { endpoint: s3.endpoint, bucket: s3.bucket, forcePathStyle: true, accessKeyIdFile: join(keys.path, 'id'), secretAccessKeyFile: join(keys.path, 'secret'), redirect },
    });
    const upstreams = [{ name: 'docker.io', url: upstream.url, default: true }];
    filler = await startWharf({ upstreams, blobs: s3Block({}) });
    // Clients reach S3 at another address than wharf does: here a TCP relay on a port of its own.
    const s3Url = new URL(s3.endpoint);
    publicS3 = await startTcpFaults({ host: s3Url.hostname, port: Number(s3Url.port) });
    redirecting = await startWharf({ upstreams, blobs: s3Block({ enabled: true, publicEndpoint: publicS3.url, ttlSeconds: 60 }) });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([filler?.stop(), redirecting?.stop()]);
    await publicS3?.stop();
    await s3?.stop();
    await upstream?.stop();
    await keys?.cleanup();
  });

  const get = (wharf: TestWharf, repository: string, headers: Record<string, string> = {}) =>
    fetch(`${wharf.url}/v2/${repository}/blobs/${digest}`, { headers, redirect: 'manual' });

  it('streams by default, and publishes what it filled to S3', async () => {
    const res = await get(filler, 'library/app');
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(digest);
    const client = createS3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    try {
      const onS3 = () => client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `blobs/sha256/${digest.slice(7)}` })).then(() => true, () => false);
      await until(onS3, 'the blob on S3', 10_000, 100);
    } finally {
      client.destroy();
    }
  });

  it('redirects a blob S3 holds to a presigned URL on the public endpoint, whose bytes are the blob', async () => {
    const res = await get(redirecting, 'library/app');
    expect(res.status).toBe(307);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    const location = new URL(res.headers.get('location')!);
    expect(location.host).toBe(new URL(publicS3.url).host);
    expect(location.searchParams.get('X-Amz-Expires')).toBe('60');
    expect(location.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    const fromS3 = await fetch(location);
    expect(fromS3.status).toBe(200);
    expect(sha256(Buffer.from(await fromS3.arrayBuffer()))).toBe(digest);
    const part = await fetch(location, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(body.subarray(100, 200))).toBe(true);
    // The bytes went from S3 to the client: nothing was filled on the redirecting replica.
    expect(await readdir(join(redirecting.dataDir, 'blobs')).catch(() => [])).toEqual([]);
    expect(upstream.gets(digest)).toBe(1);
    // A URL whose signature does not match is refused: the signature is what lets a client in.
    const tampered = new URL(location);
    tampered.searchParams.set('X-Amz-Expires', '600');
    expect((await fetch(tampered)).status).toBe(403);
  });

  it('never redirects under a repository that does not reference the blob', async () => {
    const res = await get(redirecting, 'library/other');
    expect(res.status).toBe(404);
    expect(res.headers.get('location')).toBeNull();
  });

  it('answers a HEAD itself, with the size', async () => {
    const res = await fetch(`${redirecting.url}/v2/library/app/blobs/${digest}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(body.length));
  });
});
