// podman with its own storage (vfs, in a temp dir), registries.conf and signature policy, so
// that pulls through wharf touch nothing of the machine's podman setup.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, type TempDir } from './temp-dir.ts';
import { run } from './run.ts';

export class Podman {
  readonly #dir: TempDir;

  private constructor(dir: TempDir) {
    this.#dir = dir;
  }

  /** podman using this registries.conf text. */
  static async create(registriesConf: string): Promise<Podman> {
    const dir = await makeTempDir('wharf-podman-');
    await writeFile(join(dir.path, 'registries.conf'), registriesConf);
    await writeFile(join(dir.path, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    // podman insists the auth file exists when it is named; an empty one means anonymous.
    await writeFile(join(dir.path, 'auth.json'), '{}');
    return new Podman(dir);
  }

  async #podman(args: string[]): Promise<string> {
    const d = this.#dir.path;
    const { stdout } = await run(
      'podman',
      ['--root', join(d, 'root'), '--runroot', join(d, 'run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', ...args],
      { env: { CONTAINERS_REGISTRIES_CONF: join(d, 'registries.conf'), REGISTRY_AUTH_FILE: join(d, 'auth.json') } },
    );
    return stdout.trim();
  }

  /** `podman login` to a plain-HTTP registry; the credentials go to this podman's own auth file. */
  async login(host: string, user: string, password: string): Promise<void> {
    await this.#podman(['login', '--tls-verify=false', '-u', user, '-p', password, host]);
  }

  /** Pulls `ref` (fully qualified) and returns the manifest digest podman recorded. */
  async pull(ref: string): Promise<string> {
    await this.#podman(['pull', '--quiet', '--signature-policy', join(this.#dir.path, 'policy.json'), ref]);
    return this.#podman(['image', 'inspect', '--format', '{{.Digest}}', ref]);
  }

  async cleanup(): Promise<void> {
    await this.#dir.cleanup();
  }
}
