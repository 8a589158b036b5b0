// Where an upstream's credentials come from, asked on every use: the config (or environment)
// as loaded, a passwordFile or an Azure AD token file read again when it changes on disk, or a
// Docker credential helper (`docker-credential-<name> get`: the server URL on stdin,
// `{"ServerURL","Username","Secret"}` on stdout, exit 1 "credentials not found" for none) run
// again after its lifetime. After the
// upstream rejects what get() gave, invalidate(it) makes the next get() look again (re-read the
// file, re-run the helper): the caller retries once with that and then gives up.
import { execFile } from 'node:child_process';
import { SecretFile } from './secret-file.ts';

export interface Credentials {
  readonly username: string;
  readonly secret: string;
  /** The helper's `Username: "<token>"`: secret is an identity (OAuth2 refresh) token, not a password. */
  readonly identityToken?: boolean;
  /** secret is an Azure AD access token: exchanged at ACR's /oauth2/exchange, never sent as a password. */
  readonly aadAccessToken?: boolean;
}

export interface CredentialSource {
  /** Whether invalidate() can lead to other credentials (a file, a helper), so a retry may help. */
  readonly refreshable: boolean;
  /** The credentials to use now; undefined: none (pull anonymously). Throws when they cannot be had. */
  get(): Promise<Credentials | undefined>;
  /** The upstream rejected these: look again on the next get(). */
  invalidate(rejected: Credentials): void;
}

export interface CredentialHelperSettings {
  readonly command: string;
  readonly lifetimeSeconds: number;
  readonly serverUrl?: string | undefined;
}

/** The protocol's marker for an identity token in Username. */
export const IDENTITY_TOKEN_USERNAME = '<token>';
const HELPER_TIMEOUT_MS = 10_000;
const MAX_HELPER_OUTPUT_BYTES = 64 * 1024;
/** "No credentials" and failures are asked again sooner than a lifetime: they may be fixed. */
const MISS_RETRY_MS = 60_000;
const FAILURE_RETRY_MS = 5_000;

/** The source an upstream's config names, or undefined when it has no credentials at all. */
export function credentialSourceFor(target: {
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly passwordFile?: string | undefined;
  readonly credentialHelper?: CredentialHelperSettings | undefined;
  readonly aad?: { readonly accessTokenFile: string } | undefined;
}): CredentialSource | undefined {
  if (target.aad) return new AadTokenFileSource(target.aad.accessTokenFile);
  if (target.credentialHelper) return new HelperCredentialSource(target.credentialHelper, target.credentialHelper.serverUrl ?? new URL(target.url).host);
  if (target.username === undefined) return undefined;
  if (target.passwordFile !== undefined) return new FileCredentialSource(target.username, target.passwordFile, target.password);
  return new StaticCredentialSource({ username: target.username, secret: target.password ?? '' });
}

export class StaticCredentialSource implements CredentialSource {
  readonly refreshable = false;
  readonly #credentials: Credentials;

  constructor(credentials: Credentials) {
    this.#credentials = credentials;
  }

  async get(): Promise<Credentials> {
    return this.#credentials;
  }

  invalidate(): void {}
}

/** A password in a file (a mounted Kubernetes secret, rotated in place), read again on change (secret-file.ts). */
export class FileCredentialSource implements CredentialSource {
  readonly refreshable = true;
  readonly #username: string;
  readonly #file: SecretFile;

  constructor(username: string, file: string, initial: string | undefined) {
    this.#username = username;
    this.#file = new SecretFile(file, initial);
  }

  async get(): Promise<Credentials | undefined> {
    const password = await this.#file.read();
    return password === undefined ? undefined : { username: this.#username, secret: password };
  }

  invalidate(): void {
    this.#file.forget();
  }
}

/**
 * An Azure AD access token in a file (written by a workload-identity sidecar or a cron job as
 * it expires), read again on change; after the registry rejects it, read again even if the file
 * looks the same. What it gives is exchanged for an ACR refresh token (acr-refresh-tokens.ts),
 * never sent as a password.
 */
export class AadTokenFileSource implements CredentialSource {
  readonly refreshable = true;
  readonly #file: SecretFile;

  constructor(file: string) {
    this.#file = new SecretFile(file);
  }

  async get(): Promise<Credentials | undefined> {
    const token = await this.#file.read();
    return token === undefined ? undefined : { username: '', secret: token, aadAccessToken: true };
  }

  invalidate(): void {
    this.#file.forget();
  }
}

export class CredentialHelperError extends Error {}

/** A Docker credential helper, run at most once at a time, its answer kept for lifetimeSeconds. */
export class HelperCredentialSource implements CredentialSource {
  readonly refreshable = true;
  readonly #command: string;
  readonly #serverUrl: string;
  readonly #lifetimeMs: number;
  #answer: { readonly credentials: Credentials | undefined; readonly error?: Error; readonly until: number } | undefined;
  #running: Promise<Credentials | undefined> | undefined;

  constructor(settings: CredentialHelperSettings, serverUrl: string) {
    this.#command = helperCommand(settings.command);
    this.#serverUrl = serverUrl;
    this.#lifetimeMs = settings.lifetimeSeconds * 1000;
  }

  async get(): Promise<Credentials | undefined> {
    const answer = this.#answer;
    if (answer && Date.now() < answer.until) {
      if (answer.error) throw answer.error;
      return answer.credentials;
    }
    this.#running ??= this.#run().finally(() => (this.#running = undefined));
    return this.#running;
  }

  invalidate(rejected: Credentials): void {
    const current = this.#answer?.credentials;
    if (current && current.username === rejected.username && current.secret === rejected.secret) this.#answer = undefined;
  }

  async #run(): Promise<Credentials | undefined> {
    try {
      const credentials = await runHelper(this.#command, this.#serverUrl);
      this.#answer = { credentials, until: Date.now() + (credentials ? this.#lifetimeMs : Math.min(this.#lifetimeMs, MISS_RETRY_MS)) };
      return credentials;
    } catch (err) {
      const error = err as Error;
      this.#answer = { credentials: undefined, error, until: Date.now() + Math.min(this.#lifetimeMs, FAILURE_RETRY_MS) };
      throw error;
    }
  }
}

/** `ecr-login` → docker-credential-ecr-login (from PATH); a command or path as given. */
export function helperCommand(command: string): string {
  return command.includes('/') || command.startsWith('docker-credential-') ? command : `docker-credential-${command}`;
}

/** `<command> get` with serverUrl on stdin; undefined for "credentials not found". */
export function runHelper(command: string, serverUrl: string): Promise<Credentials | undefined> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, ['get'], { timeout: HELPER_TIMEOUT_MS, maxBuffer: MAX_HELPER_OUTPUT_BYTES, env: process.env, encoding: 'utf8' }, (err, stdout, stderr) => {
      const said = firstLine(`${stdout}`.trim() || `${stderr}`.trim());
      if (err) {
        // The protocol's miss: exit 1 with "credentials not found in native keychain" on stdout.
        if ((err as { code?: unknown }).code === 1 && /credentials not found/i.test(`${stdout}\n${stderr}`)) return resolve(undefined);
        const why = (err as { killed?: boolean }).killed ? `timed out after ${HELPER_TIMEOUT_MS / 1000} s` : (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `failed${said ? `: ${said}` : ` (${err.message})`}`;
        return reject(new CredentialHelperError(`credential helper ${command} ${why}`));
      }
      try {
        resolve(parseHelperAnswer(stdout));
      } catch (parseErr) {
        reject(new CredentialHelperError(`credential helper ${command}: ${(parseErr as Error).message}`));
      }
    });
    child.stdin?.on('error', () => {}); // a helper that exits without reading stdin
    child.stdin?.end(serverUrl);
  });
}

export function parseHelperAnswer(stdout: string): Credentials | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error('answer is not JSON');
  }
  const record = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const username = typeof record.Username === 'string' ? record.Username : '';
  const secret = typeof record.Secret === 'string' ? record.Secret : '';
  // docker-credential-pass answers an empty pair for a server it holds nothing for.
  if (username === '' && secret === '') return undefined;
  if (secret === '') throw new Error('answer has no Secret');
  return username === IDENTITY_TOKEN_USERNAME ? { username, secret, identityToken: true } : { username, secret };
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').slice(0, 200);
}
