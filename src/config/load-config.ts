// The config loader: reads one YAML file, applies WHARF_* environment overrides, validates with
// the schema, resolves secrets and paths, and freezes the result. It is the only module that
// reads the environment; everything else receives the returned Config.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, OFFLINE_REGISTRIES, type ParsedConfig, type UpstreamConfig } from './schema.ts';
import { applyEnvOverrides, applyUpstreamCredentials, isPlainObject, nonEmpty, type Json } from './env-overrides.ts';
import { projectFile } from '../project-root.ts';

export { envVarForKey, upstreamEnvPrefix, type EnvOverridableKey } from './env-overrides.ts';

type DeepReadonly<T> = T extends readonly (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** An upstream after loading: password resolved from passwordFile or env, libraryPrefix decided. */
export type ResolvedUpstream = Omit<UpstreamConfig, 'libraryPrefix' | 'timeouts'> & {
  /** Defaults to true for Docker Hub (by name or URL host), false elsewhere. */
  libraryPrefix: boolean;
  /** Its own deadlines, each falling back to the global `timeouts`. */
  timeouts: ParsedConfig['timeouts'];
};

/** The validated, resolved and deeply frozen configuration. */
export type Config = DeepReadonly<Omit<ParsedConfig, 'upstreams'> & { upstreams: ResolvedUpstream[] }>;


export interface LoadConfigOptions {
  /** Config file; relative paths are resolved against cwd. Wins over WHARF_CONFIG. */
  path?: string;
  /** Defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** Base for relative paths (config file, dataDir, passwordFile, tls files). Defaults to process.cwd(). */
  cwd?: string;
}

/** Every problem found, one `<file or env var>: <key.path>: <message>` line each. */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = Object.freeze([...problems]);
  }
}

/** The config file shipped with the package, used when neither opts.path nor WHARF_CONFIG is set. */
export function defaultConfigPath(): string {
  return fileURLToPath(projectFile('config/default.yaml'));
}

export async function loadConfig(opts: LoadConfigOptions = {}): Promise<Config> {
  const env = opts.env ?? process.env;
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const chosen = opts.path ?? nonEmpty(env.WHARF_CONFIG);
  const file = chosen === undefined ? defaultConfigPath() : path.resolve(cwd, chosen);
  const shown = displayPath(file, cwd);

  const raw = await readYaml(file, shown);
  const problems: string[] = [];
  // Which dotted keys came from the environment, so a schema complaint names the env var, not the file.
  const envSources = new Map<string, string>();
  applyEnvOverrides(raw, env, envSources, problems);
  applyUpstreamCredentials(raw, env, envSources, problems);

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    problems.push(...formatIssues(result.error.issues, shown, envSources));
    throw new ConfigError(problems);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const parsed = result.data;
  if (parsed.upstreams.length === 0) parsed.upstreams = offlineRegistries();
  const resolved = await Promise.all(parsed.upstreams.map((u, i) => resolveUpstream(u, parsed.timeouts, `${shown}: upstreams.${i}`, cwd)));
  // Collected per upstream so problems come out in config order, not in file-read completion order.
  for (const r of resolved) problems.push(...r.problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const upstreams = resolved.map((r) => r.upstream);

  const tls = parsed.tls && resolveTlsPaths(parsed.tls, cwd);
  const dataDir = path.resolve(cwd, parsed.dataDir);
  const auth = parsed.auth && resolveAuthPaths(parsed.auth, cwd, dataDir);
  const blobs = resolveBlobPaths(parsed.blobs, cwd);
  const cluster = parsed.cluster && {
    ...parsed.cluster,
    secretFile: path.resolve(cwd, parsed.cluster.secretFile),
    ...(parsed.cluster.caFile !== undefined && { caFile: path.resolve(cwd, parsed.cluster.caFile) }),
  };
  return deepFreeze({ ...parsed, dataDir, upstreams, blobs, ...(tls ? { tls } : {}), ...(auth ? { auth } : {}), ...(cluster ? { cluster } : {}) }) as Config;
}

/** The S3 key files are read where the client is built. */
function resolveBlobPaths(blobs: ParsedConfig['blobs'], cwd: string): ParsedConfig['blobs'] {
  const s3 = blobs.s3;
  if (s3?.accessKeyIdFile === undefined || s3.secretAccessKeyFile === undefined) return blobs;
  return { ...blobs, s3: { ...s3, accessKeyIdFile: path.resolve(cwd, s3.accessKeyIdFile), secretAccessKeyFile: path.resolve(cwd, s3.secretAccessKeyFile) } };
}

/** Like the TLS files, the auth files are read (and watched) where they are used. */
function resolveAuthPaths(auth: NonNullable<ParsedConfig['auth']>, cwd: string, dataDir: string): NonNullable<ParsedConfig['auth']> {
  const at = (p: string) => path.resolve(cwd, p);
  const machines = Object.fromEntries(Object.entries(auth.machines).map(([name, m]) => [name, 'file' in m ? { ...m, file: at(m.file) } : m]));
  return {
    ...auth,
    signingKeyFile: auth.signingKeyFile === undefined ? path.join(dataDir, 'auth', 'token-signing-key.pem') : at(auth.signingKeyFile),
    previousKeyFiles: auth.previousKeyFiles.map(at),
    machines,
    ...(auth.htpasswd ? { htpasswd: { ...auth.htpasswd, path: at(auth.htpasswd.path) } } : {}),
    ...(auth.rulesFile ? { rulesFile: at(auth.rulesFile) } : {}),
  };
}

/** The files are read where the listener is built (and again on every change), not here. */
function resolveTlsPaths(tls: NonNullable<ParsedConfig['tls']>, cwd: string): NonNullable<ParsedConfig['tls']> {
  const { clientCaFile, ...rest } = tls;
  return {
    ...rest,
    certFile: path.resolve(cwd, tls.certFile),
    keyFile: path.resolve(cwd, tls.keyFile),
    ...(clientCaFile === undefined ? {} : { clientCaFile: path.resolve(cwd, clientCaFile) }),
  };
}

/** Names only: an offline wharf never dials them (the URL says so if it ever shows up). */
function offlineRegistries(): UpstreamConfig[] {
  return OFFLINE_REGISTRIES.map((name) => ({ name, url: 'http://offline.invalid', default: name === 'docker.io', libraryPrefix: name === 'docker.io', redirectHosts: [], authRealmHosts: [], prefetch: false, fallbackUrls: [] }));
}

/** A log-safe copy of the config: passwords and URL credentials become "***". */
export function describeConfig(config: Config): Config {
  return {
    ...config,
    admin: config.admin.token === undefined ? config.admin : { token: '***' },
    redis: { ...config.redis, ...(config.redis.url === undefined ? {} : { url: maskUrl(config.redis.url) }) },
    upstreams: config.upstreams.map((u) => ({
      ...u,
      url: maskUrl(u.url),
      ...(u.password === undefined ? {} : { password: '***' }),
    })),
  };
}

function displayPath(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

async function readYaml(file: string, shown: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${shown}: cannot read config file: ${errorCode(err)}`]);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        // yaml appends " at line L, column C:" plus a source excerpt; keep one line per problem.
        const message = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
        return pos ? `${shown}: line ${pos.line}, column ${pos.col}: ${message}` : `${shown}: ${message}`;
      }),
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) throw new ConfigError([`${shown}: expected a mapping at the top level`]);
  return value;
}

function formatIssues(issues: readonly z.core.$ZodIssue[], shown: string, envSources: ReadonlyMap<string, string>): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const base = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${shown}: ${[...base, key].join('.')}: unknown key`);
      continue;
    }
    const key = base.join('.');
    lines.push(`${envSources.get(key) ?? shown}: ${key === '' ? '(root)' : key}: ${issue.message}`);
  }
  return lines;
}

async function resolveUpstream(
  u: UpstreamConfig,
  globalTimeouts: ParsedConfig['timeouts'],
  where: string,
  cwd: string,
): Promise<{ upstream: ResolvedUpstream; problems: string[] }> {
  const problems: string[] = [];
  const { libraryPrefix, timeouts, ...rest } = u;
  const resolved: ResolvedUpstream = {
    ...rest,
    libraryPrefix: libraryPrefix ?? isDockerHub(u),
    timeouts: { ...globalTimeouts, ...timeouts },
  };
  // A helper given as a relative path is found from the config's directory, as passwordFile is.
  if (u.credentialHelper && u.credentialHelper.command.includes('/')) {
    resolved.credentialHelper = { ...u.credentialHelper, command: path.resolve(cwd, u.credentialHelper.command) };
  }
  if (u.aad) {
    // Read now only to fail at start on a wrong path; the token itself is read on use (it rotates).
    const file = path.resolve(cwd, u.aad.accessTokenFile);
    resolved.aad = { ...u.aad, accessTokenFile: file };
    try {
      if ((await readFile(file, 'utf8')).trim() === '') problems.push(`${where}.aad.accessTokenFile: ${file} is empty`);
    } catch (err) {
      problems.push(`${where}.aad.accessTokenFile: cannot read ${file}: ${errorCode(err)}`);
    }
  }
  if (u.passwordFile !== undefined) {
    const file = path.resolve(cwd, u.passwordFile);
    resolved.passwordFile = file;
    try {
      // Secret files (docker/k8s secrets, `echo > file`) usually end in a newline that is not part of the password.
      const password = (await readFile(file, 'utf8')).replace(/[\r\n]+$/, '');
      if (password === '') problems.push(`${where}.passwordFile: ${file} is empty`);
      else resolved.password = password;
    } catch (err) {
      problems.push(`${where}.passwordFile: cannot read ${file}: ${errorCode(err)}`);
    }
  }
  return { upstream: resolved, problems };
}

function isDockerHub(u: UpstreamConfig): boolean {
  const host = new URL(u.url).hostname;
  return u.name === 'docker.io' || host === 'registry-1.docker.io' || host === 'index.docker.io';
}

function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === '') return url;
    u.password = '***';
    return u.toString();
  } catch {
    return '***';
  }
}

function errorCode(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.message;
  return String(err);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
