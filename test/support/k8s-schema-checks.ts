// Offline validation of rendered Kubernetes objects: each built-in kind against the Kubernetes
// OpenAPI schema compiled into kubernetes-models, plus a strict check that no object has a key
// the schema does not know (kubernetes-models alone accepts `readinessprobe` or `resourcez`:
// the API server would drop such a key silently, and the probe or limit would just not be
// there). The ServiceMonitor CRD is not in kubernetes-models: a hand-written check of the
// fields the manifests use.
import { validate as validateConfigMap } from 'kubernetes-models/_schemas/IoK8sApiCoreV1ConfigMap';
import { validate as validateSecret } from 'kubernetes-models/_schemas/IoK8sApiCoreV1Secret';
import { validate as validateService } from 'kubernetes-models/_schemas/IoK8sApiCoreV1Service';
import { validate as validateStatefulSet } from 'kubernetes-models/_schemas/IoK8sApiAppsV1StatefulSet';
import { validate as validatePdb } from 'kubernetes-models/_schemas/IoK8sApiPolicyV1PodDisruptionBudget';
import { validate as validateLabelSelector } from '@kubernetes-models/apimachinery/_schemas/IoK8sApimachineryPkgApisMetaV1LabelSelector';
import { validate as validateObjectMeta } from '@kubernetes-models/apimachinery/_schemas/IoK8sApimachineryPkgApisMetaV1ObjectMeta';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { K8sObject } from './kustomize-lite.ts';

type Validate = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string; keyword: string; params: unknown }[] | null };
type ModelClass = new (data: never) => { validate(): void };

/** The kinds the manifests may use: the model (its validate() is the library's own check) and its schema function. */
const KINDS: Record<string, { apiVersion: string; model: ModelClass; schema: Validate }> = {
  ConfigMap: { apiVersion: 'v1', model: ConfigMap as ModelClass, schema: validateConfigMap as Validate },
  Secret: { apiVersion: 'v1', model: Secret as ModelClass, schema: validateSecret as Validate },
  Service: { apiVersion: 'v1', model: Service as ModelClass, schema: validateService as Validate },
  StatefulSet: { apiVersion: 'apps/v1', model: StatefulSet as ModelClass, schema: validateStatefulSet as Validate },
  PodDisruptionBudget: { apiVersion: 'policy/v1', model: PodDisruptionBudget as ModelClass, schema: validatePdb as Validate },
};

/** Every problem of every object, `<Kind>/<name>: ...` each; empty when all are valid. */
export function schemaProblems(objects: readonly K8sObject[]): string[] {
  return objects.flatMap((o) => {
    const id = `${o.kind}/${o.metadata.name}`;
    if (o.kind === 'ServiceMonitor') return serviceMonitorProblems(o).map((p) => `${id}: ${p}`);
    const kind = KINDS[o.kind];
    if (kind === undefined) return [`${id}: no schema for kind ${o.kind}`];
    if (o.apiVersion !== kind.apiVersion) return [`${id}: apiVersion ${o.apiVersion}, expected ${kind.apiVersion}`];
    const problems: string[] = [];
    try {
      new kind.model(structuredClone(o) as never).validate();
    } catch (err) {
      problems.push(`${id}: ${(err as Error).message}`);
    }
    problems.push(...unknownKeys(o, kind.schema).map((p) => `${id}: unknown key ${p}`));
    return problems;
  });
}

/**
 * Keys of `data` the schema never looks at. The compiled validators read each property the
 * schema declares (`data.<key> !== undefined`), and every entry of a map-typed field; a key
 * present in the object but never read is one the schema does not know.
 */
export function unknownKeys(data: unknown, validate: Validate): string[] {
  const reads = new Map<object, { where: string; read: Set<string> }>();
  const wrap = (v: unknown, where: string): unknown => {
    if (v === null || typeof v !== 'object') return v;
    const target: Record<string, unknown> | unknown[] = Array.isArray(v)
      ? v.map((x, i) => wrap(x, `${where}[${i}]`))
      : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, wrap(x, `${where}.${k}`)]));
    const read = new Set<string>();
    reads.set(target, { where, read });
    return new Proxy(target, {
      get(t, k, r) {
        if (typeof k === 'string') read.add(k);
        return Reflect.get(t, k, r) as unknown;
      },
    });
  };
  validate(wrap(data, ''));
  const unknown: string[] = [];
  for (const [target, { where, read }] of reads) {
    if (Array.isArray(target)) continue;
    for (const k of Object.keys(target)) if (!read.has(k)) unknown.push(`${where}.${k}`);
  }
  // Only the outermost: what lies under an unknown key was never looked at either.
  return unknown.filter((p) => !unknown.some((u) => p.startsWith(`${u}.`) || p.startsWith(`${u}[`)));
}

const SM_SPEC_KEYS = new Set(['selector', 'endpoints', 'namespaceSelector', 'jobLabel']);
const SM_ENDPOINT_KEYS = new Set(['port', 'path', 'interval', 'scrapeTimeout', 'scheme']);
const DURATION = /^(\d+(ms|s|m|h))+$/;

/** monitoring.coreos.com/v1 ServiceMonitor, the fields wharf's manifests use, strictly. */
export function serviceMonitorProblems(o: K8sObject): string[] {
  const problems: string[] = [];
  if (o.apiVersion !== 'monitoring.coreos.com/v1') problems.push(`apiVersion ${o.apiVersion}, expected monitoring.coreos.com/v1`);
  for (const k of Object.keys(o)) if (!['apiVersion', 'kind', 'metadata', 'spec'].includes(k)) problems.push(`unknown key .${k}`);
  problems.push(...schemaErrors(o.metadata, validateObjectMeta as Validate, '.metadata'));
  problems.push(...unknownKeys(o.metadata, validateObjectMeta as Validate).map((p) => `unknown key .metadata${p}`));
  const spec = o.spec as Record<string, unknown> | undefined;
  if (typeof spec !== 'object' || spec === null) return [...problems, '.spec is required'];
  for (const k of Object.keys(spec)) if (!SM_SPEC_KEYS.has(k)) problems.push(`unknown key .spec.${k}`);
  if (spec.selector === undefined) problems.push('.spec.selector is required');
  else {
    problems.push(...schemaErrors(spec.selector, validateLabelSelector as Validate, '.spec.selector'));
    problems.push(...unknownKeys(spec.selector, validateLabelSelector as Validate).map((p) => `unknown key .spec.selector${p}`));
  }
  const endpoints = spec.endpoints;
  if (!Array.isArray(endpoints) || endpoints.length === 0) return [...problems, '.spec.endpoints must be a non-empty list'];
  endpoints.forEach((e: Record<string, unknown>, i) => {
    const at = `.spec.endpoints[${i}]`;
    for (const k of Object.keys(e)) if (!SM_ENDPOINT_KEYS.has(k)) problems.push(`unknown key ${at}.${k}`);
    if (typeof e.port !== 'string' || e.port === '') problems.push(`${at}.port must name a Service port`);
    if (e.path !== undefined && (typeof e.path !== 'string' || !e.path.startsWith('/'))) problems.push(`${at}.path must be an absolute path`);
    for (const d of ['interval', 'scrapeTimeout']) if (e[d] !== undefined && !DURATION.test(String(e[d]))) problems.push(`${at}.${d} must be a duration like 30s`);
    if (e.scheme !== undefined && e.scheme !== 'http' && e.scheme !== 'https') problems.push(`${at}.scheme must be http or https`);
  });
  return problems;
}

function schemaErrors(data: unknown, validate: Validate, at: string): string[] {
  if (validate(data)) return [];
  return (validate.errors ?? []).map((e) => `${at}${e.instancePath.replaceAll('/', '.')}: ${e.keyword} ${JSON.stringify(e.params)}`);
}
