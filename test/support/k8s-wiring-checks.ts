// Checks that the rendered objects fit together and fit wharf: the ConfigMap's wharf.yaml loads
// with wharf's own loader (in the environment the pod gives it: the image's ENV, then the
// container's env), the probes and Services reach the port wharf listens on, every mounted
// Secret and ConfigMap exists, every file the config names is a mounted file, and a cluster
// replica advertises its own stable name under the headless Service. Each function returns its
// problems, one line each; empty means fine.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig, upstreamEnvPrefix, type Config } from '../../src/config/load-config.ts';
import type { K8sObject } from './kustomize-lite.ts';

type Plain = Record<string, any>; // rendered YAML, checked field by field

const find = (objects: readonly K8sObject[], kind: string, name?: string): Plain[] =>
  objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name)) as Plain[];

/** The StatefulSet's wharf container, its pod spec and its claim templates' names. */
function workload(objects: readonly K8sObject[]): { set: Plain; pod: Plain; container: Plain; claims: string[] } {
  const sets = find(objects, 'StatefulSet');
  if (sets.length !== 1) throw new Error(`expected one StatefulSet, found ${sets.length}`);
  const set = sets[0] as Plain;
  const pod = set.spec.template.spec as Plain;
  const container = (pod.containers as Plain[]).find((c) => c.name === 'wharf');
  if (container === undefined) throw new Error('no container named wharf');
  return { set, pod, container, claims: ((set.spec.volumeClaimTemplates ?? []) as Plain[]).map((t) => String(t.metadata.name)) };
}

/** ENV of the Dockerfile's last stage, as the container starts with it. */
export async function imageEnv(dockerfile: string): Promise<Record<string, string>> {
  const text = (await readFile(dockerfile, 'utf8')).replace(/\\\n/g, ' ');
  const last = text.slice(text.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const line of last.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const m of line.matchAll(/(\w+)=(\S+)/g)) env[m[1] as string] = m[2] as string;
  }
  return env;
}

/** The name the StatefulSet gives its first pod, standing in for the downward API's metadata.name. */
export const firstPodName = (set: Plain): string => `${String(set.metadata.name)}-0`;

/**
 * The container's environment: the image's, overridden by its env list as the kubelet fills it
 * in: plain values with $(VAR) expanded from the variables listed before (Kubernetes leaves an
 * unknown reference as written, and $$ escapes), and fieldRef metadata.name as the first pod's name.
 */
function podEnv(set: Plain, container: Plain, image: Record<string, string>): Record<string, string> {
  const env = { ...image };
  const listed = new Map<string, string>();
  for (const e of (container.env ?? []) as Plain[]) {
    let value: string | undefined;
    if (typeof e.value === 'string') value = e.value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, name?: string) => (name === undefined ? '$' : (listed.get(name) ?? ref)));
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') value = firstPodName(set);
    if (value === undefined) continue;
    listed.set(e.name, value);
    env[e.name] = value;
  }
  return env;
}

/** The file a path in the pod comes from: its mount, the volume, and the path inside the volume. */
function mountOf(pod: Plain, container: Plain, file: string): { mount: Plain; volume: Plain | undefined; rest: string } | undefined {
  const mounts = ((container.volumeMounts ?? []) as Plain[]).filter((m) => file === m.mountPath || file.startsWith(`${String(m.mountPath).replace(/\/$/, '')}/`));
  const mount = mounts.sort((a, b) => String(b.mountPath).length - String(a.mountPath).length)[0];
  if (mount === undefined) return undefined;
  const volume = ((pod.volumes ?? []) as Plain[]).find((v) => v.name === mount.name);
  return { mount, volume, rest: path.posix.relative(mount.mountPath, file) };
}

/** What a mounted file resolves to, or why it does not exist in the pod. */
function fileProblem(objects: readonly K8sObject[], pod: Plain, container: Plain, claims: string[], file: string): string | undefined {
  const at = mountOf(pod, container, file);
  if (at === undefined) return `${file} is on no volume mount`;
  if (at.volume === undefined) return claims.includes(at.mount.name) ? undefined : `${file}: mount ${at.mount.name} has no volume`;
  const source = at.volume.secret
    ? { kind: 'Secret', name: at.volume.secret.secretName, items: at.volume.secret.items }
    : at.volume.configMap
      ? { kind: 'ConfigMap', name: at.volume.configMap.name, items: at.volume.configMap.items }
      : undefined;
  if (source === undefined) return undefined; // emptyDir and the like: whatever wharf writes there
  const obj = find(objects, source.kind, source.name)[0];
  if (obj === undefined) return `${file}: ${source.kind} ${source.name} is not in the rendered output`;
  const key = ((source.items ?? []) as Plain[]).find((i) => i.path === at.rest)?.key ?? at.rest;
  const keys = [...Object.keys(obj.data ?? {}), ...Object.keys(obj.stringData ?? {})];
  return keys.includes(key) ? undefined : `${file}: ${source.kind} ${source.name} has no key ${key}`;
}

/** Every configMap/secret volume of the pod names an object of the rendered output. */
export function volumeSourceProblems(objects: readonly K8sObject[]): string[] {
  const { pod } = workload(objects);
  const problems: string[] = [];
  for (const v of (pod.volumes ?? []) as Plain[]) {
    if (v.secret && find(objects, 'Secret', v.secret.secretName).length === 0) problems.push(`volume ${v.name}: Secret ${v.secret.secretName} is not in the rendered output`);
    if (v.configMap && find(objects, 'ConfigMap', v.configMap.name).length === 0) problems.push(`volume ${v.name}: ConfigMap ${v.configMap.name} is not in the rendered output`);
  }
  return problems;
}

/** Loads the mounted wharf.yaml as the pod would; stand-ins in the environment for secret files the loader reads. */
export async function configProblems(objects: readonly K8sObject[], dockerfile: string): Promise<{ problems: string[]; config?: Config }> {
  const { set, pod, container, claims } = workload(objects);
  const env = podEnv(set, container, await imageEnv(dockerfile));
  const configFile = env.WHARF_CONFIG;
  if (configFile === undefined) return { problems: ['WHARF_CONFIG is not set'] };
  const at = mountOf(pod, container, configFile);
  const map = at?.volume?.configMap ? find(objects, 'ConfigMap', at.volume.configMap.name)[0] : undefined;
  const text = map?.data?.[at?.rest ?? ''];
  if (typeof text !== 'string') return { problems: [`WHARF_CONFIG ${configFile} is no key of a mounted ConfigMap`] };
  const raw = parseYaml(text) as Plain;
  const dir = await mkdtemp(path.join(tmpdir(), 'wharf-k8s-config-'));
  try {
    const file = path.join(dir, 'wharf.yaml');
    await writeFile(file, text);
    const loaderEnv = { ...env };
    for (const u of (raw.upstreams ?? []) as Plain[]) if (u.passwordFile !== undefined) loaderEnv[`${upstreamEnvPrefix(u.name)}_PASSWORD`] = 'from-secret-file';
    let config: Config;
    try {
      config = await loadConfig({ path: file, env: loaderEnv, cwd: dir });
    } catch (err) {
      return { problems: [`${configFile}: ${(err as Error).message}`] };
    }
    const files = [
      ...((raw.upstreams ?? []) as Plain[]).flatMap((u) => (u.passwordFile === undefined ? [] : [String(u.passwordFile)])),
      ...configFiles(config),
    ];
    const problems = files.map((f) => fileProblem(objects, pod, container, claims, f)).filter((p): p is string => p !== undefined);
    const data = mountOf(pod, container, path.join(config.dataDir, 'blobs'));
    if (data === undefined || !claims.includes(data.mount.name) || data.mount.readOnly === true) problems.push(`dataDir ${config.dataDir} is not on a writable volume claim`);
    return { problems, config };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Files the loaded config names, besides upstream password files (the loader reads those). */
function configFiles(config: Config): string[] {
  const auth = config.auth;
  const tls = config.tls;
  return [
    ...(tls ? [tls.certFile, tls.keyFile, ...(tls.clientCaFile ? [tls.clientCaFile] : [])] : []),
    ...(auth ? [auth.signingKeyFile, ...auth.previousKeyFiles, ...(auth.htpasswd ? [auth.htpasswd.path] : []), ...(auth.rulesFile ? [auth.rulesFile] : [])] : []),
    ...(auth ? Object.values(auth.machines).flatMap((m) => ('file' in m ? [m.file] : [])) : []),
    config.blobs.s3?.accessKeyIdFile,
    config.blobs.s3?.secretAccessKeyFile,
    config.cluster?.secretFile,
  ].filter((f): f is string => typeof f === 'string');
}

/** Probes, the Services and the ServiceMonitor all reach the port of config.listen. */
export function portProblems(objects: readonly K8sObject[], config: Config): string[] {
  const { container } = workload(objects);
  const listenPort = Number(/:(\d+)$/.exec(config.listen)?.[1]);
  const ports = (container.ports ?? []) as Plain[];
  const resolve = (p: unknown): number | undefined => (typeof p === 'number' ? p : ports.find((x) => x.name === p)?.containerPort);
  const problems: string[] = [];
  const expected: Record<string, string> = { livenessProbe: '/healthz', readinessProbe: '/readyz', startupProbe: '/healthz' };
  for (const [probe, wanted] of Object.entries(expected)) {
    const get = container[probe]?.httpGet;
    if (get === undefined) {
      if (probe !== 'startupProbe') problems.push(`${probe} has no httpGet`);
      continue;
    }
    if (get.path !== wanted) problems.push(`${probe} asks ${get.path}, expected ${wanted}`);
    if (resolve(get.port) !== listenPort) problems.push(`${probe} port ${get.port} is not wharf's listen port ${listenPort}`);
  }
  const podLabels = (find(objects, 'StatefulSet')[0] as Plain).spec.template.metadata.labels as Record<string, string>;
  for (const svc of find(objects, 'Service')) {
    const selector = (svc.spec.selector ?? {}) as Record<string, string>;
    if (!Object.entries(selector).every(([k, v]) => podLabels[k] === v)) problems.push(`Service ${svc.metadata.name} selects no wharf pod`);
    for (const p of svc.spec.ports as Plain[]) if (resolve(p.targetPort ?? p.port) !== listenPort) problems.push(`Service ${svc.metadata.name} port ${p.name} does not reach ${listenPort}`);
  }
  for (const sm of find(objects, 'ServiceMonitor')) {
    const match = (sm.spec.selector.matchLabels ?? {}) as Record<string, string>;
    const exprs = (sm.spec.selector.matchExpressions ?? []) as Plain[];
    const selected = find(objects, 'Service').filter((s) => {
      const labels = (s.metadata.labels ?? {}) as Record<string, string>;
      return Object.entries(match).every(([k, v]) => labels[k] === v) && exprs.every((e) => (e.operator === 'DoesNotExist' ? !(e.key in labels) : e.operator === 'Exists' ? e.key in labels : true));
    });
    if (selected.length !== 1) problems.push(`ServiceMonitor ${sm.metadata.name} selects ${selected.length} Services, expected 1`);
    for (const e of sm.spec.endpoints as Plain[]) {
      if (!selected.every((s) => (s.spec.ports as Plain[]).some((p) => p.name === e.port))) problems.push(`ServiceMonitor endpoint port ${e.port} is no port of the selected Service`);
    }
  }
  return problems;
}

/**
 * A cluster replica tells the others to reach it at its own pod: WHARF_CLUSTER_ADVERTISE_URL is
 * http://$(POD)./<the StatefulSet's serviceName>:<listen port>, where POD is an env var from the
 * downward API's metadata.name listed before it, that Service is in the output, headless, and
 * publishes not-ready pods (a replica filling a blob is still reachable while it starts up), and
 * WHARF_CLUSTER_REPLICA_NAME is the same pod name.
 */
export function clusterAddressProblems(objects: readonly K8sObject[], config: Config): string[] {
  const { set, container } = workload(objects);
  const env = (container.env ?? []) as Plain[];
  const at = (name: string) => env.findIndex((e) => e.name === name);
  const problems: string[] = [];
  if (config.cluster === undefined) problems.push('the config has no cluster block');
  const serviceName = String(set.spec.serviceName);
  const service = find(objects, 'Service', serviceName)[0];
  if (service === undefined) problems.push(`the StatefulSet's serviceName ${serviceName} is no Service of the output`);
  else {
    if (service.spec.clusterIP !== 'None') problems.push(`Service ${serviceName} is not headless (clusterIP: None), so pods get no names under it`);
    if (service.spec.publishNotReadyAddresses !== true) problems.push(`Service ${serviceName} does not publish not-ready pods`);
  }
  const listenPort = /:(\d+)$/.exec(config.listen)?.[1];
  const advertise = env[at('WHARF_CLUSTER_ADVERTISE_URL')]?.value;
  const m = typeof advertise === 'string' ? /^https?:\/\/\$\(([A-Za-z_][A-Za-z0-9_]*)\)\.([^.:/]+)(?:\.[^:/]*)?:(\d+)$/.exec(advertise) : null;
  if (m === null) {
    problems.push(`WHARF_CLUSTER_ADVERTISE_URL ${advertise === undefined ? 'is not set' : `${String(advertise)} is not http://$(POD_NAME).<headless Service>:<port>`}`);
    return problems;
  }
  const [, podVar, host, port] = m as unknown as [string, string, string, string];
  const source = env[at(podVar)];
  if (source?.valueFrom?.fieldRef?.fieldPath !== 'metadata.name') problems.push(`WHARF_CLUSTER_ADVERTISE_URL: ${podVar} is not the pod's metadata.name`);
  else if (at(podVar) > at('WHARF_CLUSTER_ADVERTISE_URL')) problems.push(`WHARF_CLUSTER_ADVERTISE_URL: ${podVar} is listed after it, so $(${podVar}) is not expanded`);
  if (host !== serviceName) problems.push(`WHARF_CLUSTER_ADVERTISE_URL names the pod under ${host}, not the StatefulSet's headless Service ${serviceName}`);
  if (port !== listenPort) problems.push(`WHARF_CLUSTER_ADVERTISE_URL port ${port} is not wharf's listen port ${String(listenPort)}`);
  const replicaName = env[at('WHARF_CLUSTER_REPLICA_NAME')]?.value;
  if (replicaName !== `$(${podVar})`) problems.push(`WHARF_CLUSTER_REPLICA_NAME ${String(replicaName)} is not $(${podVar})`);
  else if (at(podVar) > at('WHARF_CLUSTER_REPLICA_NAME')) problems.push(`WHARF_CLUSTER_REPLICA_NAME: ${podVar} is listed after it, so $(${podVar}) is not expanded`);
  return problems;
}
