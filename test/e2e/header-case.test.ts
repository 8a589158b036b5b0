// Every content answer names its headers the same way, as sent on the wire: a blob's HEAD as
// its GET, a manifest from the full handler as from the fast path and a hit thread, cold and
// cached. (Names are case-insensitive, but clients and people comparing answers see the bytes.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { RawConnection, rawRequest } from '../support/raw-http-client.ts';

const image = makeImage({ name: 'header-case', files: { 'h.txt': 'header case\n' } });

/** The header names of an answer as written on the wire, in order. */
function namesOnTheWire(head: string): string[] {
  return head
    .split('\r\n')
    .slice(1)
    .filter((line) => line.includes(':'))
    .map((line) => line.slice(0, line.indexOf(':')));
}

describe.each([1, 2])('header names on the wire (threads: %i)', (threads) => {
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    await pushImage(upstream.url, 'library/app', 'v1', image);
    wharf = await startWharf({ threads, upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
  });

  const ask = async (method: 'GET' | 'HEAD', target: string, accept = image.manifest.mediaType) => {
    const conn = new RawConnection(wharf.port);
    const answer = await conn.send(rawRequest({ method, target, headers: [['Accept', accept]] }));
    expect(answer.status).toBe(200);
    return namesOnTheWire(answer.head).filter((n) => !['Date', 'Connection', 'Keep-Alive', 'Transfer-Encoding'].includes(n));
  };

  it('are canonical and the same for HEAD and GET, cold and cached, for blobs and manifests', async () => {
    const blob = `/v2/library/app/blobs/${image.config.digest}`;
    const manifest = '/v2/library/app/manifests/v1';
    const answers = {
      'blob HEAD, not cached': await ask('HEAD', blob),
      'blob GET, cold': await ask('GET', blob),
      'blob HEAD, cached': await ask('HEAD', blob),
      'blob GET, cached': await ask('GET', blob),
      'manifest HEAD, cold': await ask('HEAD', manifest),
      'manifest GET, cached (fast path)': await ask('GET', manifest),
      'manifest HEAD, cached (fast path)': await ask('HEAD', manifest),
      'manifest GET by digest': await ask('GET', `/v2/library/app/manifests/${image.manifest.digest}`),
      'manifest HEAD by digest': await ask('HEAD', `/v2/library/app/manifests/${image.manifest.digest}`),
    };
    for (const [what, names] of Object.entries(answers)) {
      for (const name of names) expect(name, `${what}: ${name}`).toMatch(/^([A-Z][a-z]*|ETag|OCI)(-([A-Z][a-z]*|API|ID))*$/);
      expect(names, what).toContain('Docker-Content-Digest');
      expect(names, what).toContain('Content-Length');
    }
    // A blob HEAD carries the same names as its GET (which adds none for the body).
    expect(new Set(answers['blob HEAD, cached'])).toEqual(new Set(answers['blob GET, cached']));
    expect(new Set(answers['manifest HEAD, cold'])).toEqual(new Set(answers['manifest GET, cached (fast path)']));
  });
});
