// Process entry: `wharf <command>`. Parses arguments, loads the config, runs the command.
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from './config/load-config.ts';
import { createLogger } from './logger.ts';
import { BatchedLogWriter } from './logging/batched-log-writer.ts';
import { readVersion } from './version.ts';
import { startServer } from './server.ts';

const USAGE = `Usage: wharf <command> [options]

Commands:
  serve     run the pull-through cache (default config: config/default.yaml)
  warm      pull images through a running wharf so they are cached (wharf warm --help)
  export    write cached images to a bundle for an air-gapped wharf (wharf export --help)
  import    load a bundle into this wharf's cache (wharf import --help)
  gc        remove leftovers and enforce the cache budget now (wharf gc --help)
  stats     cache size, counts and largest repositories (wharf stats --help)

Options:
  -c, --config FILE   configuration file (or WHARF_CONFIG)
  -h, --help          show this help
  -v, --version       print the version
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '-v' || command === '--version') {
    process.stdout.write(`wharf ${readVersion()}\n`);
    return 0;
  }
  if (command === undefined || command === '-h' || command === '--help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  // Each command loads only its own modules: a serving wharf carries no tar or progress-bar code.
  if (command === 'serve') return serveCommand(rest);
  if (command === 'warm') return (await import('./cli/warm-command.ts')).warmCommand(rest);
  if (command === 'export') return (await import('./cli/bundle-commands.ts')).exportCommand(rest);
  if (command === 'import') return (await import('./cli/bundle-commands.ts')).importCommand(rest);
  if (command === 'gc') return (await import('./cli/maintenance-commands.ts')).gcCommand(rest);
  if (command === 'stats') return (await import('./cli/maintenance-commands.ts')).statsCommand(rest);
  process.stderr.write(`wharf: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const config = await loadConfig({ path: values.config, env: process.env });
  const output = new BatchedLogWriter(1);
  // Whatever is still pending when the process ends (an error after start) goes out at once.
  process.once('exit', () => output.flushSync());
  const logger = createLogger(config.logLevel, output);
  const server = await startServer(config, logger);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await server.close();
  await output.flush();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`wharf: invalid configuration\n${err.message}\n`);
    else if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS')) process.stderr.write(`wharf: ${err.message}\n\n${USAGE}`);
    else process.stderr.write(`wharf: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(err instanceof ConfigError ? 78 : 1);
  },
);
