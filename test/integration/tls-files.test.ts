// The TLS files as users get them wrong, made with the real openssl: each problem is named with
// its key and file, never with what the file holds, and `wharf serve` stops with them (exit 78,
// EX_CONFIG) before it listens anywhere.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTlsFiles, TlsFileError, type TlsFiles } from '../../src/http/tls-files.ts';
import { ConfigError } from '../../src/config/load-config.ts';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/test-ca.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { startWharfProcess } from '../support/wharf-process.ts';
import { run } from '../support/run.ts';

describe('TLS files', () => {
  let dir: TempDir;
  let ca: TestCa;
  let server: IssuedCertificate;
  let other: IssuedCertificate;
  let keyLines: string[];

  const problemsOf = async (files: TlsFiles) => {
    const err = await readTlsFiles(files).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TlsFileError);
    expect(err).toBeInstanceOf(ConfigError);
    const { problems, message } = err as TlsFileError;
    for (const line of keyLines) expect(message).not.toContain(line);
    return problems;
  };
  const file = async (name: string, text: string) => {
    const path = join(dir.path, name);
    await writeFile(path, text);
    return path;
  };

  beforeAll(async () => {
    dir = await makeTempDir('wharf-tls-files-');
    ca = await createTestCa(dir.path, 'files');
    [server, other] = await Promise.all([ca.issue('localhost', { usage: 'server', viaIntermediate: true }), ca.issue('other', { usage: 'server' })]);
    const keys = await Promise.all([readFile(server.keyPath, 'utf8'), readFile(other.keyPath, 'utf8')]);
    keyLines = keys.flatMap((k) => k.split('\n')).filter((l) => l.length > 16 && !l.startsWith('-----'));
  });

  afterAll(async () => {
    await dir?.cleanup();
  });

  it('reads a certificate with its chain, its key and client CAs', async () => {
    const material = await readTlsFiles({ certFile: server.certPath, keyFile: server.keyPath, clientCaFile: ca.certPath });
    expect(material.summary).toMatchObject({ subject: 'CN=localhost', issuer: 'CN=files intermediate', certificates: 2, clientCas: 1, expired: false, fingerprint256: server.fingerprint256 });
    expect(material.cert).toBe(await readFile(server.certPath, 'utf8'));
    const again = await readTlsFiles({ certFile: server.certPath, keyFile: server.keyPath, clientCaFile: ca.certPath });
    expect(again.version).toBe(material.version);
    expect((await readTlsFiles({ certFile: other.certPath, keyFile: other.keyPath })).version).not.toBe(material.version);
  });

  it('names every missing file', async () => {
    const missing = join(dir.path, 'missing');
    expect(await problemsOf({ certFile: `${missing}.crt`, keyFile: `${missing}.key`, clientCaFile: `${missing}-ca.crt` })).toEqual([
      `tls.certFile: ${missing}.crt: cannot read it (ENOENT)`,
      `tls.keyFile: ${missing}.key: cannot read it (ENOENT)`,
      `tls.clientCaFile: ${missing}-ca.crt: cannot read it (ENOENT)`,
    ]);
  });

  it('refuses files that are not PEM, or hold the wrong kind of PEM', async () => {
    const garbage = await file('garbage.txt', 'this is not a certificate\n');
    expect(await problemsOf({ certFile: garbage, keyFile: server.keyPath })).toEqual([`tls.certFile: ${garbage}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`]);
    expect(await problemsOf({ certFile: server.certPath, keyFile: server.certPath })).toEqual([
      `tls.keyFile: ${server.certPath}: holds no PEM private key (-----BEGIN PRIVATE KEY-----)`,
    ]);
    expect(await problemsOf({ certFile: server.certPath, keyFile: server.keyPath, clientCaFile: server.keyPath })).toEqual([
      `tls.clientCaFile: ${server.keyPath}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    ]);
    const broken = await file('broken.crt', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(await problemsOf({ certFile: broken, keyFile: server.keyPath })).toEqual([`tls.certFile: ${broken}: certificate 1 of 1 is not a valid certificate`]);
    const truncatedKey = (await readFile(server.keyPath, 'utf8')).replace(/\n[A-Za-z0-9+/=]+\n-----END/, '\n-----END');
    const badKey = await file('bad.key', truncatedKey);
    expect(await problemsOf({ certFile: server.certPath, keyFile: badKey })).toEqual([`tls.keyFile: ${badKey}: holds a PEM private key that cannot be read`]);
  });

  it('refuses a key that is not the certificate\'s, and a chain in the wrong order', async () => {
    const mismatch = await problemsOf({ certFile: server.certPath, keyFile: other.keyPath });
    expect(mismatch).toEqual([expect.stringMatching(new RegExp(`^tls\\.keyFile: ${other.keyPath}: is not the key of the first certificate in tls\\.certFile \\(${server.certPath}\\)`))]);
    const [leaf, intermediate] = (await readFile(server.certPath, 'utf8')).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
    const reversed = await file('reversed.crt', intermediate! + leaf!);
    expect(await problemsOf({ certFile: reversed, keyFile: server.keyPath })).toEqual([expect.stringContaining("which must be the server's own")]);
  });

  it('refuses an encrypted key (no passphrase to give)', async () => {
    const encrypted = join(dir.path, 'encrypted.key');
    await run('openssl', ['pkey', '-in', server.keyPath, '-aes256', '-passout', 'pass:secret', '-out', encrypted]);
    expect(await problemsOf({ certFile: server.certPath, keyFile: encrypted })).toEqual([
      `tls.keyFile: ${encrypted}: is an encrypted key; wharf needs it unencrypted (protect the file instead)`,
    ]);
  });

  it('stops `wharf serve` with the problem and exit code 78, printing no key material', async () => {
    const config = await file(
      'wharf.yaml',
      stringify({
        listen: '127.0.0.1:0',
        dataDir: join(dir.path, 'data'),
        tls: { listen: '127.0.0.1:0', certFile: server.certPath, keyFile: other.keyPath },
        upstreams: [{ name: 'docker.io', url: 'http://127.0.0.1:9' }],
      }),
    );
    const wharf = startWharfProcess(['serve', '--config', config]);
    expect(await wharf.exited).toBe(78);
    expect(wharf.stderr()).toMatch(new RegExp(`^wharf: invalid configuration\\ntls\\.keyFile: ${other.keyPath}: is not the key of the first certificate`));
    for (const line of keyLines) expect(wharf.stderr()).not.toContain(line);
  });
});
