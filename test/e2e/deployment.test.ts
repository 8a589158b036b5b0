// The deployment files, checked with what this machine can run (no Docker engine here): the
// compose file validated by docker-compose, the Prometheus config by promtool and by a real
// Prometheus scraping a real wharf, every Grafana panel query evaluated by that Prometheus
// against wharf's real metric names, and the Dockerfile's own healthcheck command run.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { startPrometheus, type PrometheusServer } from '../support/prometheus.ts';
import { run } from '../support/run.ts';
import { wharfShebang } from '../support/wharf-entry.ts';
import { nativeAddonPath } from '../../src/native-addon.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const read = (path: string) => readFile(join(ROOT, path), 'utf8');
type Dashboard = { panels: Array<{ type: string; title: string; datasource?: { uid: string }; targets?: Array<{ expr: string }> }>; uid: string };

describe('deployment files', () => {
  let upstream: UpstreamRegistry;
  let wharf: TestWharf;
  let prometheus: PrometheusServer;

  beforeAll(async () => {
    upstream = await startUpstreamRegistry();
    const image = makeImage({ name: 'deploy', files: { 'd.txt': 'deploy\n' } });
    await pushImage(upstream.url, 'library/deploy', 'latest', image);
    wharf = await startWharf({ upstreams: [{ name: 'docker.io', url: upstream.url, default: true }] });
    // Some traffic, so that histograms and counters have series.
    await fetch(`${wharf.url}/v2/library/deploy/manifests/latest`).then((r) => r.arrayBuffer());
    await fetch(`${wharf.url}/v2/library/deploy/blobs/${image.config.digest}`).then((r) => r.arrayBuffer());
    const shipped = parse(await read('deploy/prometheus/prometheus.yml')) as { global: unknown; scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }> };
    shipped.scrape_configs[0]!.static_configs[0]!.targets = [wharf.host]; // the compose service name, replaced
    (shipped.global as Record<string, string>).scrape_interval = '1s';
    prometheus = await startPrometheus(JSON.stringify(shipped));
  });

  afterAll(async () => {
    await prometheus?.stop();
    await wharf?.stop();
    await upstream?.stop();
  });

  it('has a docker-compose file that docker-compose accepts, wiring wharf, Redis, Prometheus and Grafana', async () => {
    const { stdout } = await run('docker-compose', ['-f', join(ROOT, 'docker-compose.yml'), 'config']);
    const compose = parse(stdout) as { services: Record<string, { environment?: Record<string, string>; volumes?: Array<{ source?: string; target: string } | string> }> };
    expect(Object.keys(compose.services).sort()).toEqual(['grafana', 'prometheus', 'redis', 'wharf']);
    expect(compose.services.wharf!.environment!.WHARF_REDIS_URL).toBe('redis://redis:6379/0');
    // docker-compose prints bind mounts as "host:container[:mode]" with host paths resolved.
    const mounts = (service: string) => (compose.services[service]!.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`).replace(/:ro$/, ''));
    expect(mounts('prometheus')).toContain(`${join(ROOT, 'deploy/prometheus/prometheus.yml')}:/etc/prometheus/prometheus.yml`);
    expect(mounts('grafana')).toContain(`${join(ROOT, 'deploy/grafana/provisioning')}:/etc/grafana/provisioning`);
    expect(mounts('grafana')).toContain(`${join(ROOT, 'deploy/grafana/dashboards')}:/var/lib/grafana/dashboards`);
  });

  it('ships a Prometheus config that promtool accepts and that really scrapes wharf', async () => {
    await run('promtool', ['check', 'config', join(ROOT, 'deploy/prometheus/prometheus.yml')]);
    const deadline = Date.now() + 15_000;
    let up: string | undefined;
    while (up !== '1' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      up = (await prometheus.query('up{job="wharf"}'))[0]?.value[1];
    }
    expect(up).toBe('1');
    expect((await prometheus.query('wharf_requests_total')).length).toBeGreaterThan(0);
  });

  it('provisions a Grafana dashboard whose every query is valid PromQL over metrics wharf exports', async () => {
    const dashboard = JSON.parse(await read('deploy/grafana/dashboards/wharf.json')) as Dashboard;
    const datasource = parse(await read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { apiVersion: number; datasources: Array<{ uid: string; url: string }> };
    const provider = parse(await read('deploy/grafana/provisioning/dashboards/wharf.yml')) as { providers: Array<{ options: { path: string } }> };
    expect(datasource.datasources[0]!.url).toBe('http://prometheus:9090');
    expect(provider.providers[0]!.options.path).toBe('/var/lib/grafana/dashboards');
    // Every registered metric has a TYPE line, with or without samples yet; histograms add suffixes.
    const types = [...(await (await fetch(`${wharf.url}/metrics`)).text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)];
    const exported = new Set(types.flatMap(([, name, type]) => (type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!])));
    const queries = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(queries.length).toBeGreaterThanOrEqual(15);
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) expect(panel.datasource?.uid, panel.title).toBe(datasource.datasources[0]!.uid);
    for (const expr of queries) {
      for (const name of expr.match(/wharf_[a-z_]+/g) ?? []) expect(exported, `${name} in ${expr}`).toContain(name);
      // Grafana's variables, as Grafana would fill them in.
      const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m').replaceAll('$upstream', '.*');
      await prometheus.query(promql); // rejects on invalid PromQL
    }
  });

  it('has a Dockerfile on Node 24, non-root, with a data volume and a healthcheck that works', async () => {
    const dockerfile = await read('Dockerfile');
    const froms = dockerfile.match(/^FROM .*/gm) ?? [];
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toMatch(/^FROM node:24-/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^VOLUME \["\/var\/lib\/wharf"\]$/m);
    const healthcheck = /^HEALTHCHECK .*\\\n\s+CMD (\[.*\])$/m.exec(dockerfile);
    expect(healthcheck).not.toBeNull();
    const [command, ...args] = JSON.parse(healthcheck![1]!) as string[];
    expect(command).toBe('node');
    // The same command, aimed at this wharf instead of the container's port 5000.
    await run(process.execPath, args.map((a) => a.replace('http://127.0.0.1:5000', wharf.url)));
    await expect(run(process.execPath, args.map((a) => a.replace('http://127.0.0.1:5000', 'http://127.0.0.1:9')))).rejects.toThrow();
  });

  it('starts the image entry point from the built JavaScript it copies', async () => {
    const dockerfile = await read('Dockerfile');
    expect(dockerfile).toMatch(/^RUN .*npm run build$/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
    expect(entrypoint).not.toBeNull();
    const [command, ...args] = JSON.parse(entrypoint![1]!) as string[];
    expect(command).toBe('node');
    // The image starts Node with the flags bin/wharf.js's first line gives it outside a container.
    expect(args.slice(0, args.indexOf('bin/wharf.js'))).toEqual(wharfShebang().nodeFlags);
    // Node rejects an unknown flag, so this also checks the flags the image starts Node with.
    const { stdout } = await run(process.execPath, [...args, '--version'], { cwd: ROOT });
    expect(stdout.trim()).toBe(`wharf ${JSON.parse(await read('package.json')).version}`);
  });

  it('builds every native addon in the image and puts each where wharf loads it from', async () => {
    const dockerfile = await read('Dockerfile');
    const build = /^RUN npm run build:native((?: && test -f \S+)+)$/m.exec(dockerfile);
    expect(build).not.toBeNull();
    // Every target native/binding.gyp builds (gyp files are JSON).
    const targets = (JSON.parse(await read('native/binding.gyp')) as { targets: Array<{ target_name: string }> }).targets.map((t) => t.target_name);
    expect(targets).toEqual(expect.arrayContaining(['sendfile', 'hash', 'memory']));
    for (const path of targets.map(nativeAddonPath)) {
      const shipped = path.slice(ROOT.length);
      expect(build![1]).toContain(` && test -f ${shipped}`);
      expect(dockerfile).toContain(`COPY --from=build /app/${shipped} ./${shipped}\n`);
    }
  });
});
