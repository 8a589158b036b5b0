// The part of kustomize that deploy/kubernetes/ uses, so the tests can render the overlays on a
// machine without kubectl: `resources` (files, multi-document, and directories holding a
// kustomization.yaml), `patches` by path (strategic merge, keyed by the patch's own kind and
// name) and `secretGenerator` from files with disableNameSuffixHash. Anything else in a
// kustomization throws instead of being silently ignored, so the manifests stay within what this
// renders. Checked against `kubectl kustomize` (kustomize v5.5.0) by hand: same objects.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export type K8sObject = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string } & Record<string, unknown> };

const SUPPORTED_KEYS = new Set(['resources', 'patches', 'secretGenerator']);

/**
 * Strategic-merge keys of the lists the manifests patch (from the Kubernetes API's
 * x-kubernetes-patch-merge-key); any other list is replaced whole, as kustomize does for lists
 * without a merge key.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
};

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Renders the kustomization in `dir`, like `kubectl kustomize dir` (object order aside). */
export async function kustomizeBuild(dir: string): Promise<K8sObject[]> {
  const kustomization: unknown = parseYaml(await readFile(path.join(dir, 'kustomization.yaml'), 'utf8'));
  if (!isPlain(kustomization)) throw new Error(`${dir}/kustomization.yaml: expected a mapping`);
  for (const key of Object.keys(kustomization)) {
    if (!SUPPORTED_KEYS.has(key)) throw new Error(`${dir}/kustomization.yaml: kustomize-lite does not support "${key}"`);
  }
  const objects: K8sObject[] = [];
  for (const entry of asStrings(kustomization.resources, 'resources', dir)) {
    const target = path.resolve(dir, entry);
    objects.push(...(entry.endsWith('.yaml') || entry.endsWith('.yml') ? await readObjects(target) : await kustomizeBuild(target)));
  }
  for (const gen of asList(kustomization.secretGenerator, 'secretGenerator', dir)) objects.push(await generateSecret(gen, dir));
  for (const patch of asList(kustomization.patches, 'patches', dir)) {
    if (Object.keys(patch).some((k) => k !== 'path')) throw new Error(`${dir}: kustomize-lite supports patches by path only`);
    for (const p of await readObjects(path.resolve(dir, String(patch.path)))) {
      const target = objects.findIndex((o) => o.kind === p.kind && o.metadata.name === p.metadata.name);
      if (target < 0) throw new Error(`${dir}: patch ${String(patch.path)} matches no ${p.kind}/${p.metadata.name}`);
      objects[target] = strategicMerge(objects[target], p) as K8sObject;
    }
  }
  assertUnique(objects, dir);
  return objects;
}

/** Strategic merge patch: maps merge, lists with a merge key merge by it, other lists are replaced. */
export function strategicMerge(base: unknown, patch: unknown, field = ''): unknown {
  if (isPlain(patch)) {
    if (Object.keys(patch).some((k) => k.startsWith('$'))) throw new Error(`kustomize-lite does not support patch directives (${field})`);
    const out: Plain = isPlain(base) ? { ...base } : {};
    for (const [k, v] of Object.entries(patch)) out[k] = v === null ? undefined : strategicMerge(out[k], v, k);
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    return out;
  }
  const key = MERGE_KEYS[field];
  if (Array.isArray(patch) && Array.isArray(base) && key !== undefined) {
    const out = [...base];
    const added: unknown[] = [];
    for (const item of patch) {
      const at = isPlain(item) ? out.findIndex((b) => isPlain(b) && b[key] === item[key]) : -1;
      if (at >= 0) out[at] = strategicMerge(out[at], item, field);
      else added.push(item);
    }
    // kustomize puts items the base did not have first.
    return [...added, ...out];
  }
  return patch;
}

async function readObjects(file: string): Promise<K8sObject[]> {
  const docs = parseAllDocuments(await readFile(file, 'utf8'));
  const objects: K8sObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isPlain(value) || typeof value.kind !== 'string' || !isPlain(value.metadata) || typeof value.metadata.name !== 'string') {
      throw new Error(`${file}: every document needs kind and metadata.name`);
    }
    objects.push(value as K8sObject);
  }
  return objects;
}

async function generateSecret(gen: Plain, dir: string): Promise<K8sObject> {
  const options = isPlain(gen.options) ? gen.options : {};
  // The hash suffix would rename the Secret; the manifests mount the names as written.
  if (options.disableNameSuffixHash !== true) throw new Error(`${dir}: secretGenerator ${String(gen.name)}: kustomize-lite needs options.disableNameSuffixHash: true`);
  if (Object.keys(gen).some((k) => !['name', 'files', 'options', 'type'].includes(k))) throw new Error(`${dir}: secretGenerator ${String(gen.name)}: only name, files, type and options are supported`);
  const data: Record<string, string> = {};
  for (const spec of asStrings(gen.files, 'files', dir)) {
    // "key=path" or "path" (key = the file's name), as kustomize reads them.
    const [key, file] = spec.includes('=') ? (spec.split('=', 2) as [string, string]) : [path.basename(spec), spec];
    data[key] = (await readFile(path.resolve(dir, file))).toString('base64');
  }
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: String(gen.name) }, type: typeof gen.type === 'string' ? gen.type : 'Opaque', data };
}

function assertUnique(objects: readonly K8sObject[], dir: string): void {
  const seen = new Set<string>();
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata.name}`;
    if (seen.has(id)) throw new Error(`${dir}: ${id} appears twice`);
    seen.add(id);
  }
}

function asList(v: unknown, what: string, dir: string): Plain[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every(isPlain)) throw new Error(`${dir}: ${what} must be a list of mappings`);
  return v;
}

function asStrings(v: unknown, what: string, dir: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`${dir}: ${what} must be a list of strings`);
  return v;
}
