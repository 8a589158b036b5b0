// `wharf serve` as a process, the way users start it: real config file, real signals.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWharfProcess } from '../support/wharf-process.ts';

describe('wharf CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('serves with a config file, logs JSON, and exits 0 on SIGTERM', async () => {
    const config = join(dir, 'wharf.yaml');
    await writeFile(config, `listen: 127.0.0.1:0\ndataDir: ${join(dir, 'data')}\nupstreams:\n  - name: docker.io\n    url: http://127.0.0.1:9\n    default: true\n`);
    const { child, exited, listening } = startWharfProcess(['serve', '--config', config]);
    try {
      const url = await listening();
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const ping = await fetch(`${url}/v2/`);
      expect(ping.status).toBe(200);
      // The upstream (port 9, discard) is unreachable: wharf still starts and answers honestly.
      const res = await fetch(`${url}/v2/library/alpine/manifests/latest`);
      expect(res.status).toBe(503);
      // The config's dataDir was created and used.
      expect((await stat(join(dir, 'data'))).isDirectory()).toBe(true);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      // A failed assertion must not leave the server running.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('refuses a bad config with the key named, exit code 78', async () => {
    const config = join(dir, 'bad.yaml');
    await writeFile(config, 'listen: nowhere\nupstreams:\n  - name: docker.io\n    url: ftp://x\n');
    const { exited, stderr } = startWharfProcess(['serve', '--config', config]);
    expect(await exited).toBe(78);
    expect(stderr()).toContain('listen');
    expect(stderr()).toContain('upstreams.0.url');
  });

  it('takes the config file from WHARF_CONFIG and env overrides', async () => {
    const { exited, stderr } = startWharfProcess(['serve'], { WHARF_CONFIG: join(dir, 'missing.yaml') });
    expect(await exited).toBe(78);
    expect(stderr()).toContain('missing.yaml');
  });

  it('prints usage for no command and unknown commands', async () => {
    const none = startWharfProcess([]);
    expect(await none.exited).toBe(2);
    const unknown = startWharfProcess(['frobnicate']);
    expect(await unknown.exited).toBe(2);
    expect(unknown.stderr()).toContain('unknown command');
  });
});
