// A wharf whose shared blob store (blobs.s3) does not answer says so as it starts, in the log,
// rather than at its first fill; it starts and serves all the same (fills then come from the
// upstream alone). Nothing listens on the endpoint here: a port taken and closed again.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { freePort } from '../support/free-port.ts';
import { LogLines } from '../support/log-lines.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';

describe('the shared blob store checked at start', () => {
  const logs = new LogLines();
  let keys: TempDir;
  let wharf: TestWharf;
  let endpoint: string;

  beforeAll(async () => {
    keys = await makeTempDir('wharf-s3-keys-');
    await writeFile(join(keys.path, 'id'), 'test-key-id');
    await writeFile(join(keys.path, 'secret'), 'test-secret');
    endpoint = `http://127.0.0.1:${await freePort()}`;
    wharf = await startWharf({
      upstreams: [{ name: 'docker.io', url: 'http://127.0.0.1:9', default: true }],
      logLevel: 'info',
      logDestination: logs,
      blobs: { s3: { endpoint, bucket: 'absent', forcePathStyle: true, accessKeyIdFile: join(keys.path, 'id'), secretAccessKeyFile: join(keys.path, 'secret'), requestTimeoutMs: 1000 } },
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await keys?.cleanup();
  });

  it('logs a warning naming the bucket and endpoint, and serves meanwhile', async () => {
    const line = await logs.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('shared blob store (S3) did not answer at start'), { timeoutMs: 15_000 });
    expect(line).toMatchObject({ level: 40, bucket: 'absent', endpoint });
    expect(String(line.err)).toMatch(/head bucket/);
    const res = await request(`http://${wharf.host}/v2/`);
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  });
});
