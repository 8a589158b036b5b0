// A real Prometheus (Debian's /usr/bin/prometheus) on 127.0.0.1 with a config given as text,
// its data in a temp dir; stopped by PID.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './free-port.ts';
import { makeTempDir } from './temp-dir.ts';
import { stopProcess } from './stop-process.ts';

export interface PrometheusServer {
  readonly url: string;
  /** An instant query; rejects with Prometheus' own error text when the query is invalid. */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
}

export async function startPrometheus(configYaml: string): Promise<PrometheusServer> {
  const dir = await makeTempDir('wharf-prometheus-');
  const config = join(dir.path, 'prometheus.yml');
  await writeFile(config, configYaml);
  const port = await freePort();
  const child = spawn(
    '/usr/bin/prometheus',
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir.path, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopProcess(child);
    await dir.cleanup();
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql })}`);
      const body = (await res.json()) as { status: string; error?: string; data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
      return body.data!.result;
    },
    stop,
  };
}
