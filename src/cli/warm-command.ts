// `wharf warm [options] REF...`: argument handling for warm.ts.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
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
  const url = values.url ?? (await urlFromConfig(values.config));
  const reporter = createWarmReporter(process.stdout);
  const summary = await warm(refs, { url: url.replace(/\/+$/, ''), platforms, concurrency }, (e) => reporter.onEvent(e));
  reporter.finish(summary);
  return summary.failed.length > 0 ? 1 : 0;
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
