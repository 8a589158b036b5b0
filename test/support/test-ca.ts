// A test certificate authority made with the real openssl in a directory of its own: server and
// client certificates shaped as deployments have them (EC P-256, subjectAltName for 127.0.0.1
// and localhost, which Go clients require, and the serverAuth or clientAuth key usage), issued
// by the root or by an intermediate, in which case the certificate file holds the chain.
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './run.ts';

export interface IssuedCertificate {
  /** PEM: the certificate, followed by the intermediate's when issued through it. */
  readonly certPath: string;
  readonly keyPath: string;
  readonly cn: string;
  /** As Node and `openssl x509 -fingerprint -sha256` print it: AB:CD:... */
  readonly fingerprint256: string;
}

export interface TestCa {
  readonly name: string;
  /** The root certificate (PEM), what clients trust. */
  readonly certPath: string;
  readonly dir: string;
  issue(cn: string, opts: { usage: 'server' | 'client'; viaIntermediate?: boolean }): Promise<IssuedCertificate>;
}

// A config of its own: the system's openssl.cnf adds extensions of its choosing to `req -x509`.
const OPENSSL_CNF = `[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

export async function createTestCa(parentDir: string, name: string): Promise<TestCa> {
  const dir = join(parentDir, name);
  await mkdir(dir, { recursive: true });
  const cnf = join(dir, 'openssl.cnf');
  await writeFile(cnf, OPENSSL_CNF);
  const key = (file: string) => run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  const rootKey = join(dir, 'ca.key');
  const rootCert = join(dir, 'ca.crt');
  await key(rootKey);
  await run('openssl', ['req', '-new', '-x509', '-key', rootKey, '-subj', `/CN=${name} root`, '-days', '2', '-config', cnf, '-extensions', 'root', '-out', rootCert]);

  const sign = async (cn: string, base: string, section: string, issuer: { cert: string; key: string }) => {
    await key(`${base}.key`);
    await run('openssl', ['req', '-new', '-utf8', '-key', `${base}.key`, '-subj', `/CN=${cn}`, '-config', cnf, '-out', `${base}.csr`]);
    await run('openssl', [
      'x509', '-req', '-in', `${base}.csr`, '-CA', issuer.cert, '-CAkey', issuer.key, '-set_serial', `0x${randomBytes(12).toString('hex')}`,
      '-days', '2', '-extfile', cnf, '-extensions', section, '-out', `${base}.crt`,
    ]);
  };
  let intermediate: Promise<{ cert: string; key: string }> | undefined;
  const intermediateCa = () =>
    (intermediate ??= (async () => {
      const base = join(dir, 'intermediate');
      await sign(`${name} intermediate`, base, 'intermediate', { cert: rootCert, key: rootKey });
      return { cert: `${base}.crt`, key: `${base}.key` };
    })());

  let issued = 0;
  return {
    name,
    certPath: rootCert,
    dir,
    async issue(cn, opts) {
      const base = join(dir, `${opts.usage}-${++issued}`);
      const issuer = opts.viaIntermediate ? await intermediateCa() : { cert: rootCert, key: rootKey };
      await sign(cn, base, opts.usage, issuer);
      const leaf = await readFile(`${base}.crt`, 'utf8');
      if (opts.viaIntermediate) await writeFile(`${base}.crt`, leaf + (await readFile(issuer.cert, 'utf8')));
      return { certPath: `${base}.crt`, keyPath: `${base}.key`, cn, fingerprint256: new X509Certificate(leaf).fingerprint256 };
    },
  };
}
