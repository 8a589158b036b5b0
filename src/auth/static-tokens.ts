// Machine bearer tokens: fixed secrets for callers that cannot log in, such as a containerd
// node sending a static `Authorization` header from hosts.toml. Only SHA-256 digests are kept,
// given in the config as hex or computed from a token file (a mounted secret), so a config
// dump or a heap snapshot shows no usable token.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readAuthFile } from './read-auth-file.ts';

export type MachineTokenOptions =
  | { readonly sha256: string; readonly groups?: readonly string[] }
  | { readonly file: string; readonly groups?: readonly string[] };

export interface StaticTokensOptions {
  /** Machine name -> its token, as the SHA-256 hex of the token or a file holding the token. */
  readonly machines: Readonly<Record<string, MachineTokenOptions>>;
}

export interface Machine {
  readonly name: string;
  readonly groups: readonly string[];
}

export class StaticTokenError extends Error {
  readonly machine: string;

  constructor(machine: string, why: string, options?: { cause?: unknown }) {
    super(`machine token ${JSON.stringify(machine)}: ${why}`, options);
    this.name = 'StaticTokenError';
    this.machine = machine;
  }
}

/** Shorter tokens from a file are refused: a static secret must not be guessable. */
export const MIN_TOKEN_LENGTH = 16;
const SHA256_HEX = /^[0-9a-f]{64}$/i;

interface Entry {
  readonly digest: Buffer;
  readonly machine: Machine;
}

export class StaticTokens {
  readonly #entries: readonly Entry[];

  private constructor(entries: readonly Entry[]) {
    this.#entries = entries;
  }

  static async load(options: StaticTokensOptions): Promise<StaticTokens> {
    const entries: Entry[] = [];
    for (const [name, source] of Object.entries(options.machines)) {
      if (name.length === 0) throw new StaticTokenError(name, 'empty machine name');
      const digest = 'sha256' in source ? digestFromHex(name, source.sha256) : await digestFromFile(name, source.file);
      if (entries.some((e) => e.digest.equals(digest))) {
        throw new StaticTokenError(name, 'has the same token as another machine; each needs its own');
      }
      const groups = Object.freeze([...(source.groups ?? [])]);
      entries.push({ digest, machine: Object.freeze({ name, groups }) });
    }
    return new StaticTokens(entries);
  }

  get size(): number {
    return this.#entries.length;
  }

  /**
   * The machine whose token this is, or undefined. Every entry is compared, in constant time,
   * so neither the comparison nor the count of comparisons depends on where a match is.
   */
  identify(bearer: string): Machine | undefined {
    if (this.#entries.length === 0) return undefined;
    const offered = createHash('sha256').update(bearer, 'utf8').digest();
    let found: Machine | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(offered, entry.digest)) found = entry.machine;
    }
    return found;
  }
}

export function sha256Hex(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function digestFromHex(name: string, hex: string): Buffer {
  if (!SHA256_HEX.test(hex)) throw new StaticTokenError(name, 'sha256 must be 64 hex digits (the SHA-256 of the token, not the token)');
  return Buffer.from(hex, 'hex');
}

async function digestFromFile(name: string, path: string): Promise<Buffer> {
  const text = await readAuthFile(path, (why, cause) => new StaticTokenError(name, `token file ${path}: ${why}`, { cause }));
  // The file holds the token; a trailing newline (echo, kubectl create secret) is not part of it.
  const token = text.replace(/\r?\n$/, '');
  if (token.length < MIN_TOKEN_LENGTH) throw new StaticTokenError(name, `token file ${path} holds fewer than ${MIN_TOKEN_LENGTH} characters`);
  if (/\s/.test(token)) throw new StaticTokenError(name, `token file ${path} holds whitespace inside the token`);
  return createHash('sha256').update(token, 'utf8').digest();
}
