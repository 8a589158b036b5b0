// skopeo as a client of wharf: direct pulls and pulls through a registries.conf mirror.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run.ts';

export interface OciLayoutIndex {
  manifests: Array<{ digest: string; mediaType: string; annotations?: Record<string, string> }>;
}

export class Skopeo {
  readonly #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async create(): Promise<Skopeo> {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-skopeo-'));
    await writeFile(join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    return new Skopeo(dir);
  }

  /** Writes a registries.conf with this text; returns its path. */
  async registriesConf(text: string): Promise<string> {
    const path = join(this.#dir, `registries-${Date.now()}-${Math.random().toString(36).slice(2)}.conf`);
    await writeFile(path, text);
    return path;
  }

  /** skopeo copy to a fresh OCI layout; returns the layout's index.json. */
  /** creds: user:password for the source registry (`--src-creds`). */
  async copy(source: string, opts: { registriesConf?: string; all?: boolean; creds?: string } = {}): Promise<{ dir: string; index: OciLayoutIndex }> {
    const out = await mkdtemp(join(this.#dir, 'layout-'));
    const args = ['--policy', join(this.#dir, 'policy.json')];
    if (opts.registriesConf) args.push('--registries-conf', opts.registriesConf);
    args.push('copy', '--retry-times', '0', '--src-tls-verify=false');
    if (opts.all) args.push('--all', '--preserve-digests');
    if (opts.creds) args.push('--src-creds', opts.creds);
    args.push(source, `oci:${out}:pulled`);
    await run('skopeo', args, { env: { REGISTRY_AUTH_FILE: join(this.#dir, 'auth.json') } });
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as OciLayoutIndex;
    return { dir: out, index };
  }

  async inspectRaw(source: string): Promise<Buffer> {
    const { stdout } = await run('skopeo', ['--policy', join(this.#dir, 'policy.json'), 'inspect', '--raw', '--retry-times', '0', '--tls-verify=false', source]);
    return Buffer.from(stdout, 'utf8');
  }

  async cleanup(): Promise<void> {
    await rm(this.#dir, { recursive: true, force: true });
  }
}
