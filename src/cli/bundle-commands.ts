// `wharf export` and `wharf import`: argument handling around bundle-export.ts and
// bundle-import.ts. Both work on the cache of the configured data dir (and Redis, if set).
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load-config.ts';
import { createLogger } from '../logger.ts';
import { openCache } from './open-cache.ts';
import { exportBundle } from './bundle-export.ts';
import { importBundle } from './bundle-import.ts';
import { megabytes } from './format.ts';

export const EXPORT_USAGE = `Usage: wharf export [options] REF... -o BUNDLE.tar

Writes cached images (every cached platform, digests unchanged) to a tar in OCI image layout,
each blob hashed again on the way out. REF is [registry/]repository[:tag|@digest].

Options:
  -o, --output FILE   the bundle to write (required)
  -c, --config FILE   configuration file (its dataDir and redis decide which cache)
`;

export const IMPORT_USAGE = `Usage: wharf import [options] BUNDLE.tar

Loads a bundle written by wharf export (or any OCI layout tar) into this wharf's cache. Every
manifest and blob is checked against its digest; an image is tagged only when complete.

Options:
  -c, --config FILE   configuration file (its dataDir and redis decide which cache)
`;

export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { output: { type: 'string', short: 'o' }, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return usage(EXPORT_USAGE, 0);
  if (!values.output || positionals.length === 0) return usage(`wharf export: name the images and --output\n\n${EXPORT_USAGE}`, 2);
  const config = await loadConfig({ path: values.config, env: process.env });
  const cache = await openCache(config, createLogger('silent'));
  // Written under a temporary name: a failed export never leaves a bundle that looks whole.
  const partial = `${values.output}.partial`;
  try {
    const summary = await exportBundle(positionals, cache, createWriteStream(partial), (line) => process.stdout.write(`${line}\n`));
    await rename(partial, values.output);
    for (const warning of summary.warnings) process.stderr.write(`warning: ${warning}\n`);
    for (const failure of summary.failed) process.stderr.write(`error: ${failure}\n`);
    process.stdout.write(`exported ${summary.images} images to ${values.output}: ${summary.manifests} manifests, ${summary.blobs} blobs (${megabytes(summary.bytes)})\n`);
    return summary.failed.length > 0 ? 1 : 0;
  } catch (err) {
    await rm(partial, { force: true });
    process.stderr.write(`wharf export: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await cache.close();
  }
}

export async function importCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return usage(IMPORT_USAGE, 0);
  const [file] = positionals;
  if (!file || positionals.length > 1) return usage(`wharf import: name one bundle\n\n${IMPORT_USAGE}`, 2);
  const config = await loadConfig({ path: values.config, env: process.env });
  const cache = await openCache(config, createLogger('silent'));
  try {
    const summary = await importBundle(createReadStream(file), cache, (line) => process.stdout.write(`${line}\n`));
    for (const warning of summary.warnings) process.stderr.write(`warning: ${warning}\n`);
    for (const error of summary.errors) process.stderr.write(`error: ${error}\n`);
    process.stdout.write(
      `imported ${summary.tags.length} images: ${summary.manifests} manifests, ${summary.blobs} blobs (${megabytes(summary.bytes)}), ${summary.alreadyCached} blobs already cached, ${summary.errors.length} errors\n`,
    );
    return summary.errors.length > 0 ? 1 : 0;
  } finally {
    await cache.close();
  }
}

function usage(text: string, code: number): number {
  (code === 0 ? process.stdout : process.stderr).write(text);
  return code;
}
