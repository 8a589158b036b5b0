// `wharf warm [options] REF...`: argument handling for warm.ts.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Agent, request, type Dispatcher } from 'undici';
import { loadConfig } from '../config/load-config.ts';
import { PLAIN_LISTENER_OFF } from '../config/schema.ts';
import { splitListen } from '../server.ts';
import { parsePlatform, warm } from './warm.ts';
import { createWarmReporter } from './warm-report.ts';

export const WARM_USAGE = `Usage: wharf warm [options] REF...

Pulls images through a running wharf so that they are cached: every manifest and blob,
for all platforms of multi-platform images unless --platform is given.
REF is [registry/]repository[:tag|@digest], e.g. alpine:3.20, ghcr.io/owner/app:v1.

Options:
  -u, --url URL          the running wharf (default: the config's listen address; tls.listen when listen is off)
  -p, --platform OS/ARCH only this platform of multi-platform images (repeatable)
  -f, --file FILE        more references, one per line (# comments allowed)
  -j, --concurrency N    blobs fetched at once (default 4)
  -c, --config FILE      configuration file, for the default URL
      --creds-file FILE  user:password of an htpasswd user, when wharf has auth on
      --token-file FILE  a machine token, when wharf has auth on
`;

export async function warmCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string', short: 'u' },
      platform: { type: 'string', short: 'p', multiple: true },
      file: { type: 'string', short: 'f' },
      concurrency: { type: 'string', short: 'j' },
      config: { type: 'string', short: 'c' },
      'creds-file': { type: 'string' },
      'token-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(WARM_USAGE);
    return 0;
  }
  const refs = [...positionals];
  if (values.file) refs.push(...referencesIn(await readFile(values.file, 'utf8')));
  if (refs.length === 0) {
    process.stderr.write(`wharf warm: no image references given\n\n${WARM_USAGE}`);
    return 2;
  }
  const concurrency = Number(values.concurrency ?? 4);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    process.stderr.write(`wharf warm: --concurrency must be a whole number of at least 1\n`);
    return 2;
  }
  let platforms;
  try {
    platforms = (values.platform ?? []).map(parsePlatform);
  } catch (err) {
    process.stderr.write(`wharf warm: ${(err as Error).message}\n`);
    return 2;
  }
  let authorization: string | undefined;
  try {
    authorization = await authorizationFrom(values['creds-file'], values['token-file']);
  } catch (err) {
    process.stderr.write(`wharf warm: ${(err as Error).message}\n`);
    return 2;
  }
  const url = (values.url ?? (await urlFromConfig(values.config))).replace(/\/+$/, '');
  // Credentials from files, not arguments: arguments show in `ps`.
  const dispatcher = authorization === undefined ? undefined : withAuthorization(authorization);
  const absent = await noWharfAt(url, dispatcher);
  if (absent) {
    await dispatcher?.close();
    process.stderr.write(`wharf warm: no wharf answers at ${url} (${absent}).\nStart one (npx wharf serve --config FILE), or give the address of the running one with --url URL.\n`);
    return 2;
  }
  const reporter = createWarmReporter(process.stdout);
  const summary = await warm(refs, { url, platforms, concurrency, dispatcher }, (e) => reporter.onEvent(e));
  await dispatcher?.close();
  reporter.finish(summary);
  return summary.failed.length > 0 ? 1 : 0;
}

/**
 * Why nothing answers as a wharf at url (connection refused, no such host, no answer in time,
 * or something else listening), or undefined when a wharf does. /healthz needs no credentials.
 */
async function noWharfAt(url: string, dispatcher: Dispatcher | undefined): Promise<string | undefined> {
  try {
    const { statusCode, body } = await request(`${url}/healthz`, { headersTimeout: 5000, bodyTimeout: 5000, ...(dispatcher && { dispatcher }) });
    const text = await body.text();
    if (statusCode === 200 && text.includes('"ok"')) return undefined;
    return `it answered ${statusCode} to /healthz, not as wharf does`;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    return e.code ?? e.cause?.code ?? e.message;
  }
}

async function authorizationFrom(credsFile: string | undefined, tokenFile: string | undefined): Promise<string | undefined> {
  if (credsFile !== undefined && tokenFile !== undefined) throw new Error('give --creds-file or --token-file, not both');
  const read = async (file: string) => (await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${file}: ${err.code ?? 'error'}`);
  })).trim();
  if (credsFile !== undefined) {
    const creds = await read(credsFile);
    if (!creds.includes(':')) throw new Error(`${credsFile}: expected user:password`);
    return `Basic ${Buffer.from(creds).toString('base64')}`;
  }
  return tokenFile === undefined ? undefined : `Bearer ${await read(tokenFile)}`;
}

/** Every request of the warm run bears the credentials (wharf accepts them on any request). */
function withAuthorization(authorization: string): Dispatcher {
  return new Agent().compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: { ...(opts.headers as Record<string, string> | undefined), authorization } }, handler));
}

function referencesIn(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);
}

async function urlFromConfig(configPath: string | undefined): Promise<string> {
  const config = await loadConfig({ path: configPath, env: process.env });
  // HTTPS only when plain HTTP is off: then the CA must be trusted (NODE_EXTRA_CA_CERTS).
  const plain = config.listen !== PLAIN_LISTENER_OFF;
  const { host, port } = splitListen(plain ? config.listen : config.tls!.listen);
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `${plain ? 'http' : 'https'}://${reachable}:${port}`;
}
