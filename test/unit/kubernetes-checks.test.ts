// Each check of test/unit/kubernetes-manifests.test.ts fed one broken manifest: a check that
// cannot fail proves nothing. Every case starts from the real rendered overlay and breaks one
// thing.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kustomizeBuild, strategicMerge, type K8sObject } from '../support/kustomize-lite.ts';
import { DOCKERFILE, renderOverlay } from '../support/render-kubernetes.ts';
import { schemaProblems } from '../support/k8s-schema-checks.ts';
import { clusterAddressProblems, configProblems, portProblems, volumeSourceProblems } from '../support/k8s-wiring-checks.ts';
import type { Config } from '../../src/config/load-config.ts';

type Plain = Record<string, any>; // rendered YAML

let rendered: K8sObject[];
let config: Config;

beforeAll(async () => {
  rendered = await renderOverlay('replicas-redis');
  config = (await configProblems(rendered, DOCKERFILE)).config!;
});

/** A deep copy of the rendered overlay with `edit` applied to the object of that kind (and name). */
function broken(kind: string, edit: (o: Plain) => void, name?: string): K8sObject[] {
  const copy = structuredClone(rendered);
  const target = copy.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (target === undefined) throw new Error(`no ${kind}`);
  edit(target as Plain);
  return copy;
}
const container = (o: Plain): Plain => o.spec.template.spec.containers[0];
const wharfYaml = (edit: (text: string) => string) => (o: Plain) => {
  o.data['wharf.yaml'] = edit(o.data['wharf.yaml']);
};

describe('schema check', () => {
  it('catches a misspelt key the Kubernetes schema does not know', () => {
    const objects = broken('StatefulSet', (o) => {
      const c = container(o);
      c.readinessprobe = c.readinessProbe;
      delete c.readinessProbe;
    });
    expect(schemaProblems(objects)).toEqual(['StatefulSet/wharf: unknown key .spec.template.spec.containers[0].readinessprobe']);
  });

  it('catches a wrong type (the kubernetes-models validation)', () => {
    expect(schemaProblems(broken('StatefulSet', (o) => (o.spec.replicas = 'three'))).join('\n')).toMatch(/StatefulSet\/wharf: .*replicas must be integer/);
  });

  it('catches an unknown key at the top of a Service and in a PDB', () => {
    expect(schemaProblems(broken('Service', (o) => (o.sepc = o.spec), 'wharf'))).toEqual(['Service/wharf: unknown key .sepc']);
    expect(schemaProblems(broken('PodDisruptionBudget', (o) => (o.spec.maxUnavailble = 1)))).toEqual(['PodDisruptionBudget/wharf: unknown key .spec.maxUnavailble']);
  });

  it('catches a kind it has no schema for', () => {
    expect(schemaProblems(broken('PodDisruptionBudget', (o) => (o.kind = 'PodDisruptionBudgt')))).toEqual(['PodDisruptionBudgt/wharf: no schema for kind PodDisruptionBudgt']);
  });

  it('checks the ServiceMonitor strictly: unknown keys, durations, selector, apiVersion', () => {
    expect(schemaProblems(broken('ServiceMonitor', (o) => (o.spec.endpoints[0].intervall = '30s')))).toEqual(['ServiceMonitor/wharf: unknown key .spec.endpoints[0].intervall']);
    expect(schemaProblems(broken('ServiceMonitor', (o) => (o.spec.endpoints[0].interval = 'thirty')))).toEqual(['ServiceMonitor/wharf: .spec.endpoints[0].interval must be a duration like 30s']);
    expect(schemaProblems(broken('ServiceMonitor', (o) => (o.spec.selector.matchLabel = {})))).toEqual(['ServiceMonitor/wharf: unknown key .spec.selector.matchLabel']);
    expect(schemaProblems(broken('ServiceMonitor', (o) => (o.apiVersion = 'monitoring.coreos.com/v1beta1')))).toEqual(['ServiceMonitor/wharf: apiVersion monitoring.coreos.com/v1beta1, expected monitoring.coreos.com/v1']);
  });
});

describe('mounted objects check', () => {
  it('catches a Secret the pod mounts that the output does not have', () => {
    const objects = broken('StatefulSet', (o) => (o.spec.template.spec.volumes.find((v: Plain) => v.name === 'htpasswd').secret.secretName = 'wharf-htpasswords'));
    expect(volumeSourceProblems(objects)).toEqual(['volume htpasswd: Secret wharf-htpasswords is not in the rendered output']);
  });

  it('catches a missing ConfigMap', () => {
    const objects = rendered.filter((o) => o.kind !== 'ConfigMap');
    expect(volumeSourceProblems(objects)).toEqual(['volume config: ConfigMap wharf-config is not in the rendered output']);
  });
});

describe('config check', () => {
  it("reports the loader's complaint about wharf.yaml", async () => {
    const { problems } = await configProblems(broken('ConfigMap', wharfYaml((t) => t.replace('dataDir:', 'dataDirectory:'))), DOCKERFILE);
    expect(problems.join('\n')).toMatch(/dataDirectory: unknown key/);
  });

  it('catches a config file path that no mount provides', async () => {
    const objects = broken('ConfigMap', wharfYaml((t) => t.replace('/etc/wharf/htpasswd/htpasswd', '/etc/wharf/users/htpasswd')));
    expect((await configProblems(objects, DOCKERFILE)).problems).toEqual(['/etc/wharf/users/htpasswd is on no volume mount']);
  });

  it('catches a file name the mounted Secret has no key for', async () => {
    const objects = broken('ConfigMap', wharfYaml((t) => t.replace('token-signing-key.pem', 'token.key')));
    expect((await configProblems(objects, DOCKERFILE)).problems).toEqual(['/etc/wharf/token-key/token.key: Secret wharf-token-signing-key has no key token.key']);
  });

  it('catches an upstream passwordFile outside the mounts', async () => {
    const objects = broken('ConfigMap', wharfYaml((t) => t.replace('/etc/wharf/upstreams/dockerhub-token', '/run/secrets/dockerhub-token')));
    expect((await configProblems(objects, DOCKERFILE)).problems).toEqual(['/run/secrets/dockerhub-token is on no volume mount']);
  });

  it('catches a dataDir that is not on the volume claim', async () => {
    const objects = broken('ConfigMap', wharfYaml((t) => t.replace('dataDir: /var/lib/wharf', 'dataDir: /etc/wharf/config/data')));
    expect((await configProblems(objects, DOCKERFILE)).problems).toEqual(['dataDir /etc/wharf/config/data is not on a writable volume claim']);
  });

  it("uses the image's environment: without the empty WHARF_DATA_DIR the Dockerfile's value wins", async () => {
    const objects = broken('StatefulSet', (o) => (container(o).env = container(o).env.filter((e: Plain) => e.name !== 'WHARF_DATA_DIR')));
    const objectsMoved = structuredClone(objects);
    wharfYaml((t) => t.replace('dataDir: /var/lib/wharf', 'dataDir: /var/lib/wharf/cache'))(objectsMoved.find((o) => o.kind === 'ConfigMap') as Plain);
    expect((await configProblems(objectsMoved, DOCKERFILE)).config?.dataDir).toBe('/var/lib/wharf');
  });

  it('catches WHARF_CONFIG pointing at no ConfigMap key', async () => {
    const objects = broken('StatefulSet', (o) => (container(o).env.find((e: Plain) => e.name === 'WHARF_CONFIG').value = '/etc/wharf/config/config.yaml'));
    expect((await configProblems(objects, DOCKERFILE)).problems).toEqual(['WHARF_CONFIG /etc/wharf/config/config.yaml is no key of a mounted ConfigMap']);
  });
});

describe('port check', () => {
  it('catches a probe on another port than config.listen', async () => {
    const objects = broken('ConfigMap', wharfYaml((t) => t.replace('listen: 0.0.0.0:5000', 'listen: 0.0.0.0:6000')));
    const moved = (await configProblems(objects, DOCKERFILE)).config!;
    expect(portProblems(objects, moved)).toContain("livenessProbe port http is not wharf's listen port 6000");
  });

  it('catches a probe on the wrong path', () => {
    const objects = broken('StatefulSet', (o) => (container(o).readinessProbe.httpGet.path = '/healthz'));
    expect(portProblems(objects, config)).toEqual(['readinessProbe asks /healthz, expected /readyz']);
  });

  it('catches a Service that selects no pod or targets another port', () => {
    expect(portProblems(broken('Service', (o) => (o.spec.selector = { app: 'wharf' }), 'wharf'), config)).toEqual(['Service wharf selects no wharf pod']);
    expect(portProblems(broken('Service', (o) => (o.spec.ports[0].targetPort = 8080), 'wharf'), config)).toEqual(['Service wharf port http does not reach 5000']);
  });

  it('catches a ServiceMonitor that selects both Services or names a missing port', () => {
    expect(portProblems(broken('ServiceMonitor', (o) => delete o.spec.selector.matchExpressions), config)).toEqual(['ServiceMonitor wharf selects 2 Services, expected 1']);
    expect(portProblems(broken('ServiceMonitor', (o) => (o.spec.endpoints[0].port = 'metrics')), config)).toEqual(['ServiceMonitor endpoint port metrics is no port of the selected Service']);
  });
});

describe('cluster address check (replicas-redis-s3)', () => {
  let scaleOut: K8sObject[];
  let scaleOutConfig: Config;
  beforeAll(async () => {
    scaleOut = await renderOverlay('replicas-redis-s3');
    scaleOutConfig = (await configProblems(scaleOut, DOCKERFILE)).config!;
  });
  const edited = (kind: string, edit: (o: Plain) => void, name?: string): K8sObject[] => {
    const copy = structuredClone(scaleOut);
    edit(copy.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name)) as Plain);
    return copy;
  };
  const envOf = (o: Plain, name: string): Plain => container(o).env.find((e: Plain) => e.name === name);

  it('catches an advertise URL under the load-balanced Service instead of the headless one', () => {
    const objects = edited('StatefulSet', (o) => (envOf(o, 'WHARF_CLUSTER_ADVERTISE_URL').value = 'http://$(POD_NAME).wharf:5000'));
    expect(clusterAddressProblems(objects, scaleOutConfig)).toEqual(["WHARF_CLUSTER_ADVERTISE_URL names the pod under wharf, not the StatefulSet's headless Service wharf-headless"]);
  });

  it('catches an advertise URL that names no pod (every replica would advertise the Service)', () => {
    const objects = edited('StatefulSet', (o) => (envOf(o, 'WHARF_CLUSTER_ADVERTISE_URL').value = 'http://wharf-headless:5000'));
    expect(clusterAddressProblems(objects, scaleOutConfig)).toEqual(['WHARF_CLUSTER_ADVERTISE_URL http://wharf-headless:5000 is not http://$(POD_NAME).<headless Service>:<port>']);
  });

  it('catches a pod variable from the wrong field, listed too late, or a replica name that is not the pod', () => {
    const fromNamespace = edited('StatefulSet', (o) => (envOf(o, 'POD_NAME').valueFrom.fieldRef.fieldPath = 'metadata.namespace'));
    expect(clusterAddressProblems(fromNamespace, scaleOutConfig)).toEqual(["WHARF_CLUSTER_ADVERTISE_URL: POD_NAME is not the pod's metadata.name"]);
    const late = edited('StatefulSet', (o) => {
      const env = container(o).env as Plain[];
      container(o).env = [...env.filter((e) => e.name !== 'POD_NAME'), ...env.filter((e) => e.name === 'POD_NAME')];
    });
    expect(clusterAddressProblems(late, scaleOutConfig)).toEqual([
      'WHARF_CLUSTER_ADVERTISE_URL: POD_NAME is listed after it, so $(POD_NAME) is not expanded',
      'WHARF_CLUSTER_REPLICA_NAME: POD_NAME is listed after it, so $(POD_NAME) is not expanded',
    ]);
    const fixedName = edited('StatefulSet', (o) => (envOf(o, 'WHARF_CLUSTER_REPLICA_NAME').value = 'wharf'));
    expect(clusterAddressProblems(fixedName, scaleOutConfig)).toEqual(['WHARF_CLUSTER_REPLICA_NAME wharf is not $(POD_NAME)']);
  });

  it('catches a governing Service that is not headless, and a port other than the listen port', () => {
    const notHeadless = edited('Service', (o) => delete o.spec.clusterIP, 'wharf-headless');
    expect(clusterAddressProblems(notHeadless, scaleOutConfig)).toEqual(['Service wharf-headless is not headless (clusterIP: None), so pods get no names under it']);
    const port = edited('StatefulSet', (o) => (envOf(o, 'WHARF_CLUSTER_ADVERTISE_URL').value = 'http://$(POD_NAME).wharf-headless:6000'));
    expect(clusterAddressProblems(port, scaleOutConfig)).toEqual(["WHARF_CLUSTER_ADVERTISE_URL port 6000 is not wharf's listen port 5000"]);
  });

  it('expands $(POD_NAME) for the loader: a misspelt reference reaches it unexpanded', async () => {
    const objects = edited('StatefulSet', (o) => (envOf(o, 'WHARF_CLUSTER_REPLICA_NAME').value = '$(POD_NAM)'));
    expect((await configProblems(objects, DOCKERFILE)).problems.join('\n')).toMatch(/WHARF_CLUSTER_REPLICA_NAME: cluster.replicaName: expected a short name/);
  });

  it('catches an S3 key file or cluster secret that no mount provides', async () => {
    const s3 = edited('ConfigMap', wharfYaml((t) => t.replace('/etc/wharf/s3/s3-secret-access-key', '/etc/wharf/s3/secret-key')));
    expect((await configProblems(s3, DOCKERFILE)).problems).toEqual(['/etc/wharf/s3/secret-key: Secret wharf-s3-credentials has no key secret-key']);
    const unmounted = edited('StatefulSet', (o) => (container(o).volumeMounts = container(o).volumeMounts.filter((m: Plain) => m.name !== 'cluster-secret')));
    expect((await configProblems(unmounted, DOCKERFILE)).problems).toEqual(['/etc/wharf/cluster/cluster-secret is on no volume mount']);
  });
});

describe('kustomize-lite', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'wharf-kustomize-lite-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('refuses kustomize features it does not implement instead of ignoring them', async () => {
    await writeFile(path.join(dir, 'kustomization.yaml'), 'resources: []\nnamePrefix: prod-\n');
    await expect(kustomizeBuild(dir)).rejects.toThrow('kustomize-lite does not support "namePrefix"');
  });

  it('refuses a patch that matches no object', async () => {
    await writeFile(path.join(dir, 'p.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: nope }\n');
    await writeFile(path.join(dir, 'kustomization.yaml'), 'patches:\n  - path: p.yaml\n');
    await expect(kustomizeBuild(dir)).rejects.toThrow('matches no Service/nope');
  });

  it('merges lists with a merge key by it and replaces the others', () => {
    const base = { containers: [{ name: 'a', image: 'x', args: ['1'] }], env: [{ name: 'A', value: '1' }] };
    const patch = { containers: [{ name: 'a', args: ['2'] }], env: [{ name: 'B', value: '2' }, { name: 'A', value: '3' }] };
    expect(strategicMerge(base, patch)).toEqual({ containers: [{ name: 'a', image: 'x', args: ['2'] }], env: [{ name: 'B', value: '2' }, { name: 'A', value: '3' }] });
  });
});
