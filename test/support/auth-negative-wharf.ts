// The auth-enabled wharf the negative suite attacks, as its own process (bin/wharf.js serve), so
// that a crash is an exit and not a failure of the test runner, and so that its JSON log (every
// thread's access lines, a hit thread's with its `thread`) can be read: htpasswd users alice and
// bob, a machine token for `ci`, rules giving alice and ci only ghcr.io/acme/a and bob only
// ghcr.io/acme/b, anonymous nothing; docker.io (the default upstream) and ghcr.io are both the
// same real registry, which holds acme/a and acme/b.
import { hash } from '@node-rs/bcrypt';
import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { stringify } from 'yaml';
import { makeTempDir, type TempDir } from './temp-dir.ts';
import { WHARF_ENTRY as ENTRY } from './wharf-entry.ts';


export const PASSWORDS = { alice: 'alice-pw-7c1e94a2d0', bob: 'bob-pw-3f08b6c5e1' } as const;
export const MACHINE_TOKEN = 'ci-machine-token-5d2a9e7f41c3b8';

export interface AuthWharf {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly dir: TempDir;
  /** The token signing key wharf generated at its first start, and its kid. */
  readonly signingKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicPem: string;
  readonly kid: string;
  /** Every line wharf wrote to stdout so far. */
  readonly log: string[];
  /** Exit code or signal name, once the process has ended. */
  exitedWith(): string | undefined;
  /** SIGTERM, then SIGKILL after 10 s; resolves with how it ended. */
  stop(): Promise<string>;
}

export async function startAuthWharf(threads: number, upstreamUrl: string): Promise<AuthWharf> {
  const dir = await makeTempDir('wharf-auth-negative-');
  const htpasswd = join(dir.path, 'htpasswd');
  await writeFile(htpasswd, `alice:${await hash(PASSWORDS.alice, 4)}\nbob:${await hash(PASSWORDS.bob, 4)}\n`);
  const signingKeyFile = join(dir.path, 'token-signing-key.pem');
  const config = join(dir.path, 'wharf.yaml');
  await writeFile(
    config,
    stringify({
      listen: '127.0.0.1:0',
      threads,
      dataDir: join(dir.path, 'data'),
      logLevel: 'info',
      // Tags stay fresh for the whole run: every answer about b comes from the cache.
      cache: { tagTtlSeconds: 3600 },
      upstreams: [
        { name: 'docker.io', url: upstreamUrl, default: true },
        { name: 'ghcr.io', url: upstreamUrl },
      ],
      auth: {
        htpasswd: { path: htpasswd },
        machines: { ci: { sha256: createHash('sha256').update(MACHINE_TOKEN).digest('hex') } },
        rules: [
          { repositories: ['ghcr.io/acme/a'], users: ['alice'], machines: ['ci'] },
          { repositories: ['ghcr.io/acme/b'], users: ['bob'] },
        ],
        signingKeyFile,
      },
    }),
  );
  // Only the config file configures it: no WHARF_* variable of the test run leaks in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_')));
  const child = spawn(process.execPath, [ENTRY, 'serve', '--config', config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  let stderr = '';
  let partial = '';
  let ended: string | undefined;
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => {
      ended = signal ?? String(code);
      resolve(ended);
    }),
  );
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        log.push(line);
        if (line.includes('"wharf listening"')) resolve((JSON.parse(line) as { url: string }).url);
      }
    });
    void exited.then((how) => reject(new Error(`wharf exited (${how}) before listening:\n${stderr}`)));
  });
  let url: string;
  try {
    url = await listening;
  } catch (err) {
    await dir.cleanup();
    throw err;
  }
  const pem = await readFile(signingKeyFile, 'utf8');
  const signingKey = createPrivateKey(pem);
  const publicKey = createPublicKey(signingKey);
  return {
    url,
    port: Number(new URL(url).port),
    pid: child.pid!,
    dir,
    signingKey,
    publicKey,
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }) as string,
    kid: await calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK, 'sha256'),
    log,
    exitedWith: () => ended,
    async stop() {
      if (ended === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await dir.cleanup();
      return ended!;
    },
  };
}
