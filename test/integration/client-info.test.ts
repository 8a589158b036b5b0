// clientInfo(req) on real servers and sockets: the peer address of a plain connection, the
// verified certificate of a TLS one, and on the main thread's internal listener the client a hit
// thread names, believed only with the process's secret. Any local process can reach that
// listener, so a wrong, missing or malformed secret or client header must fall back to the
// loopback peer it really is.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientInfo, type ClientInfo } from '../../src/http/client-info.ts';
import { FORWARDED_CLIENT_HEADERS as H, newForwardSecret, setForwardedClientHeaders, trustForwardedClients } from '../../src/http/forwarded-client.ts';
import { readTlsFiles } from '../../src/http/tls-files.ts';
import { TlsServer } from '../../src/http/tls-server.ts';
import { createTestCa, type IssuedCertificate } from '../support/test-ca.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';

const answerWithClient: RequestListener = (req: IncomingMessage, res: ServerResponse) => res.end(JSON.stringify(clientInfo(req)));

async function listening(server: ReturnType<typeof createServer> | TlsServer['server']): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('clientInfo', () => {
  let dir: TempDir;
  let runner: IssuedCertificate;
  let caPem: string;
  const secret = newForwardSecret();
  const internal = createServer(trustForwardedClients(secret, answerWithClient));
  const plain = createServer(answerWithClient);
  let tls: TlsServer;
  let ports: { internal: number; plain: number; tls: number };

  const ask = async (url: string, headers: Record<string, string> = {}, agent?: Agent): Promise<ClientInfo> => {
    const res = await request(url, { headers, ...(agent ? { dispatcher: agent } : {}) });
    return (await res.body.json()) as ClientInfo;
  };

  beforeAll(async () => {
    dir = await makeTempDir('wharf-client-info-');
    const ca = await createTestCa(dir.path, 'client-info');
    const server = await ca.issue('localhost', { usage: 'server' });
    runner = await ca.issue('Jürgen Ωmega, CI', { usage: 'client' });
    caPem = await readFile(ca.certPath, 'utf8');
    const material = await readTlsFiles({ certFile: server.certPath, keyFile: server.keyPath, clientCaFile: ca.certPath });
    tls = new TlsServer({ clientCaFile: ca.certPath, requireClientCert: false }, material, Buffer.alloc(48, 1), answerWithClient, pino({ level: 'silent' }));
    ports = { internal: await listening(internal), plain: await listening(plain), tls: await listening(tls.server) };
  });

  afterAll(async () => {
    for (const s of [internal, plain, tls?.server]) s?.close();
    await dir?.cleanup();
  });

  it('is the peer address on a plain connection, whatever headers say', async () => {
    expect(await ask(`http://127.0.0.1:${ports.plain}/`)).toEqual({ address: '127.0.0.1' });
    const forged = { [H.secret]: secret, [H.address]: '10.0.0.1', [H.subjectCN]: 'admin', [H.fingerprint256]: runner.fingerprint256 };
    // Even with the right secret: only the internal listener reads these.
    expect(await ask(`http://127.0.0.1:${ports.plain}/`, forged)).toEqual({ address: '127.0.0.1' });
  });

  it('carries a verified client certificate on TLS, and none without one', async () => {
    const [cert, key] = await Promise.all([readFile(runner.certPath, 'utf8'), readFile(runner.keyPath, 'utf8')]);
    const withCert = new Agent({ connect: { ca: caPem, cert, key } });
    const without = new Agent({ connect: { ca: caPem } });
    try {
      expect(await ask(`https://127.0.0.1:${ports.tls}/`, {}, withCert)).toEqual({
        address: '127.0.0.1',
        secure: true,
        certificate: { subjectCN: 'Jürgen Ωmega, CI', fingerprint256: runner.fingerprint256 },
      });
      expect(await ask(`https://127.0.0.1:${ports.tls}/`, {}, without)).toEqual({ address: '127.0.0.1', secure: true });
    } finally {
      await Promise.all([withCert.close(), without.close()]);
    }
  });

  it('on the internal listener, is the client a hit thread names with the secret, non-ASCII names included', async () => {
    const named: Record<string, string> = {};
    setForwardedClientHeaders(named, { address: '192.0.2.7', certificate: { subjectCN: 'Jürgen Ωmega, CI', fingerprint256: runner.fingerprint256 } }, secret);
    expect(await ask(`http://127.0.0.1:${ports.internal}/`, named)).toEqual({
      address: '192.0.2.7',
      certificate: { subjectCN: 'Jürgen Ωmega, CI', fingerprint256: runner.fingerprint256 },
    });
    const anonymous: Record<string, string> = {};
    setForwardedClientHeaders(anonymous, { address: '2001:db8::1' }, secret);
    expect(await ask(`http://127.0.0.1:${ports.internal}/`, anonymous)).toEqual({ address: '2001:db8::1' });
    // A client that came over TLS: the token realm it is pointed to must be https too.
    const overTls: Record<string, string> = {};
    setForwardedClientHeaders(overTls, { address: '192.0.2.8', secure: true }, secret);
    expect(await ask(`http://127.0.0.1:${ports.internal}/`, overTls)).toEqual({ address: '192.0.2.8', secure: true });
  });

  it('on the internal listener, is the loopback peer without the right secret', async () => {
    const claims = { [H.address]: '10.0.0.1', [H.subjectCN]: 'admin', [H.fingerprint256]: runner.fingerprint256 };
    const wrong = newForwardSecret(); // same length, other bytes
    for (const headers of [claims, { ...claims, [H.secret]: wrong }, { ...claims, [H.secret]: `${secret}x` }, { ...claims, [H.secret]: '' }]) {
      expect(await ask(`http://127.0.0.1:${ports.internal}/`, headers)).toEqual({ address: '127.0.0.1' });
    }
    // The right secret with a malformed claim: no certificate, or no claim at all.
    expect(await ask(`http://127.0.0.1:${ports.internal}/`, { ...claims, [H.secret]: secret, [H.fingerprint256]: 'AB:CD' })).toEqual({ address: '10.0.0.1' });
    expect(await ask(`http://127.0.0.1:${ports.internal}/`, { ...claims, [H.secret]: secret, [H.address]: 'evil.example' })).toEqual({ address: '127.0.0.1' });
  });

  it('replaces whatever the client sent under those names before a request is handed over', () => {
    const headers: Record<string, string | string[]> = { [H.secret]: 'guess', [H.subjectCN]: 'admin', [H.fingerprint256]: runner.fingerprint256, accept: '*/*' };
    setForwardedClientHeaders(headers, { address: '127.0.0.2' }, secret);
    expect(headers).toEqual({ accept: '*/*', [H.secret]: secret, [H.address]: '127.0.0.2' });
  });
});
