// The HTTPS listener's certificate (with its chain), key and client CAs, read from their PEM
// files and checked before use: at start, where a bad file stops wharf with a message naming
// it, and after every change, where a bad new set is refused and the running one kept. Messages
// name the files and what is wrong with them, never what is in them.
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../config/load-config.ts';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile?: string | undefined;
}

/** What a TLS server is built from; the PEM texts go only to node:tls. */
export interface TlsMaterial {
  /** PEM: the server's certificate first, then its chain. */
  readonly cert: string;
  readonly key: string;
  /** PEM: the CAs client certificates are verified against. */
  readonly ca?: string;
  /** Tells two reads of the files apart without keeping a second copy of the key around. */
  readonly version: string;
  readonly summary: TlsSummary;
}

/** What a log line may say about the certificate in use. */
export interface TlsSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly validTo: string;
  readonly expired: boolean;
  readonly fingerprint256: string;
  /** Certificates in certFile (1: no chain). */
  readonly certificates: number;
  readonly clientCas?: number;
}

type TlsKey = 'tls.certFile' | 'tls.keyFile' | 'tls.clientCaFile';

/** Every unusable file, one `tls.<key>: <file>: <what is wrong>` line each. */
export class TlsFileError extends ConfigError {
  constructor(problems: readonly string[]) {
    super(problems);
    this.name = 'TlsFileError';
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export async function readTlsFiles(files: TlsFiles): Promise<TlsMaterial> {
  const problems: string[] = [];
  const problem = (key: TlsKey, file: string, what: string) => problems.push(`${key}: ${file}: ${what}`);
  // Read at once, reported in the config's order (not the order the reads happen to end in).
  const read = (key: TlsKey, file: string) =>
    readFile(file, 'utf8').then(
      (text) => ({ text, report: () => undefined }),
      (err: unknown) => ({ text: undefined, report: () => problem(key, file, `cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`) }),
    );
  const reads = await Promise.all([
    read('tls.certFile', files.certFile),
    read('tls.keyFile', files.keyFile),
    files.clientCaFile === undefined ? undefined : read('tls.clientCaFile', files.clientCaFile),
  ]);
  for (const r of reads) r?.report();
  const [cert, key, ca] = reads.map((r) => r?.text);

  const chain = cert === undefined ? undefined : certificatesIn(cert, (what) => problem('tls.certFile', files.certFile, what));
  const privateKey = key === undefined ? undefined : privateKeyIn(key, (what) => problem('tls.keyFile', files.keyFile, what));
  const clientCas = ca === undefined ? undefined : certificatesIn(ca, (what) => problem('tls.clientCaFile', files.clientCaFile!, what));
  const leaf = chain?.[0];
  if (leaf && privateKey && !leaf.checkPrivateKey(privateKey)) {
    problem('tls.keyFile', files.keyFile, `is not the key of the first certificate in tls.certFile (${files.certFile}), which must be the server's own`);
  }
  if (problems.length > 0 || cert === undefined || key === undefined || !leaf) throw new TlsFileError(problems);
  try {
    createSecureContext({ cert, key, ...(ca === undefined ? {} : { ca }) });
  } catch (err) {
    // OpenSSL's reason (an unsupported key type, a weak signature) names no key material.
    throw new TlsFileError([`tls.certFile: ${files.certFile}: cannot be used with tls.keyFile (${files.keyFile}): ${(err as Error).message}`]);
  }
  return {
    cert,
    key,
    ...(ca === undefined ? {} : { ca }),
    version: createHash('sha256').update(cert).update('\0').update(key).update('\0').update(ca ?? '').digest('hex'),
    summary: {
      subject: leaf.subject.replace(/\n/g, ', '),
      issuer: leaf.issuer.replace(/\n/g, ', '),
      validTo: new Date(leaf.validTo).toISOString(),
      expired: Date.parse(leaf.validTo) < Date.now(),
      fingerprint256: leaf.fingerprint256,
      certificates: chain!.length,
      ...(clientCas ? { clientCas: clientCas.length } : {}),
    },
  };
}

function certificatesIn(text: string, problem: (what: string) => void): X509Certificate[] | undefined {
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    problem('holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
    return undefined;
  }
  const certificates: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      problem(`certificate ${i + 1} of ${blocks.length} is not a valid certificate`);
      return undefined;
    }
  }
  return certificates;
}

function privateKeyIn(text: string, problem: (what: string) => void): KeyObject | undefined {
  if (/-----BEGIN (ENCRYPTED|[A-Z ]*PRIVATE KEY-----\r?\nProc-Type: 4,ENCRYPTED)/.test(text)) {
    problem('is an encrypted key; wharf needs it unencrypted (protect the file instead)');
    return undefined;
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    problem('holds no PEM private key (-----BEGIN PRIVATE KEY-----)');
    return undefined;
  }
  try {
    return createPrivateKey(text);
  } catch {
    problem('holds a PEM private key that cannot be read');
    return undefined;
  }
}
