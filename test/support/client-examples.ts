// The client configuration files shipped in config/examples/clients, with the placeholder
// address replaced by a running wharf's: tests pull with exactly what users copy.
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const EXAMPLES = new URL('../../config/examples/clients/', import.meta.url).pathname;
const PLACEHOLDER = /wharf\.example:5000/g;

export async function exampleRegistriesConf(wharfHost: string): Promise<string> {
  return (await readFile(join(EXAMPLES, 'registries.conf'), 'utf8')).replace(PLACEHOLDER, wharfHost);
}

export async function exampleDaemonJson(wharfHost: string): Promise<{ 'registry-mirrors': string[]; 'insecure-registries': string[] }> {
  return JSON.parse((await readFile(join(EXAMPLES, 'daemon.json'), 'utf8')).replace(PLACEHOLDER, wharfHost));
}

/** Copies certs.d (one hosts.toml per registry) into `dir`, pointed at wharfHost. */
export async function exampleHostsDir(dir: string, wharfHost: string): Promise<string> {
  await cp(join(EXAMPLES, 'containerd', 'certs.d'), dir, { recursive: true });
  for (const registry of await readdir(dir)) {
    const file = join(dir, registry, 'hosts.toml');
    await writeFile(file, (await readFile(file, 'utf8')).replace(PLACEHOLDER, wharfHost));
  }
  return dir;
}
