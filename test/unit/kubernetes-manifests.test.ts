// deploy/kubernetes/ rendered per overlay (without kubectl: test/support/kustomize-lite.ts) and
// checked offline: Kubernetes schemas with no unknown keys, the ConfigMap through wharf's own
// config loader, probes and Services on wharf's port, every mounted Secret and file present.
// test/unit/kubernetes-checks.test.ts shows each check failing on a broken manifest.
import { beforeAll, describe, expect, it } from 'vitest';
import type { K8sObject } from '../support/kustomize-lite.ts';
import { DOCKERFILE, OVERLAYS, renderOverlay } from '../support/render-kubernetes.ts';
import { schemaProblems } from '../support/k8s-schema-checks.ts';
import { configProblems, portProblems, volumeSourceProblems } from '../support/k8s-wiring-checks.ts';

type Plain = Record<string, any>; // rendered YAML

const statefulSet = (objects: K8sObject[]): Plain => objects.find((o) => o.kind === 'StatefulSet') as Plain;

describe.each(OVERLAYS)('deploy/kubernetes/overlays/%s', (overlay) => {
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await renderOverlay(overlay);
  });

  it('renders the StatefulSet, Services, PDB, ServiceMonitor, ConfigMap and the three Secrets', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ConfigMap/wharf-config',
      'PodDisruptionBudget/wharf',
      'Secret/wharf-htpasswd',
      'Secret/wharf-token-signing-key',
      'Secret/wharf-upstream-credentials',
      'Service/wharf',
      'Service/wharf-headless',
      'ServiceMonitor/wharf',
      'StatefulSet/wharf',
    ]);
  });

  it('every object is valid against its schema, with no unknown keys', () => {
    expect(schemaProblems(objects)).toEqual([]);
  });

  it('every Secret and ConfigMap the pod mounts is in the rendered output', () => {
    expect(volumeSourceProblems(objects)).toEqual([]);
  });

  it("the ConfigMap's wharf.yaml loads, every file it names is mounted, and the probes reach its port", async () => {
    const { problems, config } = await configProblems(objects, DOCKERFILE);
    expect(problems).toEqual([]);
    expect(config?.auth?.signingKeyFile).toBe('/etc/wharf/token-key/token-signing-key.pem');
    expect(portProblems(objects, config!)).toEqual([]);
  });

  it('runs unprivileged: non-root, read-only root filesystem, no capabilities, bounded memory', () => {
    const pod = statefulSet(objects).spec.template.spec;
    const c = pod.containers[0];
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits.memory).toEqual(expect.any(String));
    expect(c.image).toBe('wharf:local'); // the tag docker-compose.yml builds
  });
});

describe('overlay differences', () => {
  it('single-node: one replica, the embedded manifest store (no Redis)', async () => {
    const objects = await renderOverlay('single-node');
    expect(statefulSet(objects).spec.replicas).toBe(1);
    const { config } = await configProblems(objects, DOCKERFILE);
    expect(config?.redis.url).toBeUndefined();
  });

  it('replicas-redis: three replicas on separate nodes, sharing Redis and one signing key Secret', async () => {
    const objects = await renderOverlay('replicas-redis');
    const set = statefulSet(objects);
    expect(set.spec.replicas).toBe(3);
    const anti = set.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
    expect(anti).toEqual([{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: set.spec.template.metadata.labels } }]);
    const { config } = await configProblems(objects, DOCKERFILE);
    expect(config?.redis.url).toBe('redis://redis:6379/0');
    // The patch merged into the base's env, not replaced it.
    expect(set.spec.template.spec.containers[0].env.map((e: Plain) => e.name)).toEqual(['WHARF_REDIS_URL', 'WHARF_CONFIG', 'WHARF_LISTEN', 'WHARF_DATA_DIR']);
    const keyVolume = set.spec.template.spec.volumes.find((v: Plain) => v.name === 'token-signing-key');
    expect(keyVolume.secret.secretName).toBe('wharf-token-signing-key');
    expect(objects.find((o) => o.kind === 'PodDisruptionBudget')).toMatchObject({ spec: { maxUnavailable: 1 } });
  });
});
