// The peer endpoint replicas read running fills from: only with the cluster secret, never a
// new fill (a digest this replica has neither filling nor cached is a 404 that costs no upstream
// request), the cached blob whole and by Range, through the hit threads' hand-off too.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBlobUpstream, type BlobUpstream } from '../support/blob-upstream.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { pseudoRandomBytes, sha256 } from '../support/test-images.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import { createDeps } from '../../src/deps.ts';
import pino from 'pino';

const SECRET = 'peer-endpoint-test-secret-0123456789abcdef';
const cached = pseudoRandomBytes('peer-cached', 300_000);
const never = pseudoRandomBytes('peer-never', 1000);

describe.each([1, 2])('the peer endpoint (threads: %i)', (threads) => {
  let upstream: BlobUpstream;
  let redis: RedisServer;
  let dir: TempDir;
  let wharf: TestWharf;
  let cachedDigest: string;
  let neverDigest: string;
  const peer = (digest: string, headers: Record<string, string> = {}) => fetch(`${wharf.url}/_wharf/peer/blobs/${digest}`, { headers });
  const withSecret = { authorization: `Bearer ${SECRET}` };

  beforeAll(async () => {
    upstream = await startBlobUpstream();
    cachedDigest = upstream.serve(cached);
    neverDigest = upstream.serve(never);
    redis = await startRedisServer();
    dir = await makeTempDir('wharf-peer-');
    await writeFile(join(dir.path, 'secret'), `${SECRET}\n`);
    wharf = await startWharf({
      threads,
      redisUrl: redis.url,
      cluster: { advertiseUrl: 'http://127.0.0.1:9', secretFile: join(dir.path, 'secret'), replicaName: 'peer-test' },
      upstreams: [{ name: 'docker.io', url: upstream.url, default: true }],
    });
    const res = await fetch(`${wharf.url}/v2/library/x/blobs/${cachedDigest}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(cached)).toBe(true);
  });

  afterAll(async () => {
    await wharf?.stop();
    await redis?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('refuses callers without the cluster secret', async () => {
    const wrong: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${Buffer.from(`x:${SECRET}`).toString('base64')}` }, { authorization: SECRET }];
    for (const headers of wrong) {
      const res = await peer(cachedDigest, headers);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }] });
    }
  });

  it('serves a cached blob to a caller with the secret, whole and by Range', async () => {
    const whole = await peer(cachedDigest, withSecret);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-length')).toBe(String(cached.length));
    expect(sha256(Buffer.from(await whole.arrayBuffer()))).toBe(cachedDigest);
    const part = await peer(cachedDigest, { ...withSecret, range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(cached.subarray(1000, 2000))).toBe(true);
  });

  it('never starts a fill: a blob it does not hold is a 404 without an upstream request', async () => {
    const res = await peer(neverDigest, withSecret);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] });
    expect(upstream.gets(neverDigest)).toBe(0);
    expect((await peer('sha256:nothex', withSecret)).status).toBe(400);
  });
});

describe('cluster secrets', () => {
  it('refuses to start with a secret too short to guard the peer endpoint, or none', async () => {
    const dir = await makeTempDir('wharf-peer-secret-');
    try {
      const configPath = join(dir.path, 'wharf.yaml');
      await writeFile(join(dir.path, 'short'), 'tooshort\n');
      for (const [file, problem] of [
        ['short', /at least 32 characters/],
        ['missing', /cannot read: ENOENT/],
      ] as const) {
        await writeFile(
          configPath,
          `dataDir: ${join(dir.path, 'data')}\nredis: { url: "redis://127.0.0.1:1" }\ncluster: { advertiseUrl: "http://127.0.0.1:9", secretFile: ${file} }\nupstreams: [{ name: docker.io, url: "http://127.0.0.1:9" }]\n`,
        );
        const config = await loadConfig({ path: configPath, env: {}, cwd: dir.path });
        await expect(createDeps(config, pino({ level: 'silent' }))).rejects.toThrow(problem);
      }
    } finally {
      await dir.cleanup();
    }
  });
});
