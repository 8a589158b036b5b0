// threads: 2 with the access log on: the hit thread's lines go to the main thread and out through
// its one writer, so every request answered on either thread is logged once, as a whole line.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { LogLines } from '../support/log-lines.ts';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const image = makeImage({ name: 'thread-logs', files: { 'a.txt': 'a\n' } });

describe('access log with threads: 2', () => {
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  const logs = new LogLines();

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/app', 'latest', image);
    wharf = await startWharf({ threads: 2, logLevel: 'info', logDestination: logs, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  it('logs every request of both threads once, each line whole', async () => {
    const first = await request(`${wharf.url}/v2/app/manifests/latest`, { headers: { accept: ACCEPT } });
    await first.body.dump();
    const ids: string[] = [];
    // Connections of their own, many at once, so the kernel spreads them over both threads.
    await Promise.all(
      Array.from({ length: 16 }, async (_, c) => {
        const agent = new Agent({ connections: 1 });
        try {
          for (let i = 0; i < 25; i++) {
            const id = `c${c}-r${i}`;
            ids.push(id);
            const res = await request(`${wharf.url}/v2/app/manifests/latest`, { headers: { accept: ACCEPT, 'x-request-id': id }, dispatcher: agent });
            expect(res.statusCode).toBe(200);
            await res.body.dump();
          }
        } finally {
          await agent.close();
        }
      }),
    );
    const logged = async () => logs.lines.filter((l) => l.msg === 'request' && ids.includes(String(l.reqId)));
    const deadline = Date.now() + 5000;
    while ((await logged()).length < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const lines = await logged();
    // LogLines parses every line: a line torn or interleaved would have thrown there.
    expect(lines.map((l) => l.reqId).sort()).toEqual([...ids].sort());
    const byThread = new Set(lines.map((l) => (l.thread === undefined ? 'main' : 'hit')));
    expect(byThread).toEqual(new Set(['main', 'hit']));
    for (const l of lines) expect(l).toMatchObject({ level: 30, service: 'wharf', method: 'GET', status: 200, cache: 'hit', url: '/v2/app/manifests/latest' });
  });
});
