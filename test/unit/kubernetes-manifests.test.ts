// deploy/kubernetes/ rendered per overlay (without kubectl: test/support/kustomize-lite.ts) and
// checked offline: Kubernetes schemas with no unknown keys, the ConfigMap through wharf's own
// config loader, probes and Services on wharf's port, every mounted Secret and file present, and
// (replicas-redis-s3) each replica advertising its own pod under the headless Service.
// test/unit/kubernetes-checks.test.ts shows each check failing on a broken manifest.
import { beforeAll, describe, expect, it } from 'vitest';
import type { K8sObject } from '../support/kustomize-lite.ts';
import { DOCKERFILE, OVERLAYS, renderOverlay } from '../support/render-kubernetes.ts';
import { schemaProblems } from '../support/k8s-schema-checks.ts';
import { clusterAddressProblems, configProblems, portProblems, volumeSourceProblems } from '../support/k8s-wiring-checks.ts';
import { parse as parseYaml } from 'yaml';

type Plain = Record<string, any>; // rendered YAML

const statefulSet = (objects: K8sObject[]): Plain => objects.find((o) => o.kind === 'StatefulSet') as Plain;

describe.each(OVERLAYS)('deploy/kubernetes/overlays/%s', (overlay) => {
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await renderOverlay(overlay);
  });

  it("renders the StatefulSet, Services, PDB, ServiceMonitor, ConfigMap and the base's three Secrets (with S3 two more)", () => {
    const scaleOut = overlay === 'replicas-redis-s3' ? ['Secret/wharf-cluster-secret', 'Secret/wharf-s3-credentials'] : [];
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'ConfigMap/wharf-config',
        'PodDisruptionBudget/wharf',
        'Secret/wharf-htpasswd',
        'Secret/wharf-token-signing-key',
        'Secret/wharf-upstream-credentials',
        ...scaleOut,
        'Service/wharf',
        'Service/wharf-headless',
        'ServiceMonitor/wharf',
        'StatefulSet/wharf',
      ].sort(),
    );
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

  it('replicas-redis-s3: three replicas on Redis and S3, each advertising its own pod under the headless Service', async () => {
    const objects = await renderOverlay('replicas-redis-s3');
    const set = statefulSet(objects);
    expect(set.spec.replicas).toBe(3);
    expect(set.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    const { problems, config } = await configProblems(objects, DOCKERFILE);
    expect(problems).toEqual([]);
    expect(config?.redis.url).toBe('redis://redis:6379/0');
    expect(config?.blobs.s3).toMatchObject({
      endpoint: 'http://s3.storage.svc:9000',
      bucket: 'wharf',
      forcePathStyle: true,
      accessKeyIdFile: '/etc/wharf/s3/s3-access-key-id',
      secretAccessKeyFile: '/etc/wharf/s3/s3-secret-access-key',
    });
    // The first pod's values, as the kubelet expands $(POD_NAME).
    expect(config?.cluster).toMatchObject({ advertiseUrl: 'http://wharf-0.wharf-headless:5000', replicaName: 'wharf-0', secretFile: '/etc/wharf/cluster/cluster-secret' });
    expect(clusterAddressProblems(objects, config!)).toEqual([]);
    // The pod name first, then the two variables that use it, then replicas-redis's and the base's.
    expect(set.spec.template.spec.containers[0].env.map((e: Plain) => e.name)).toEqual([
      'POD_NAME',
      'WHARF_CLUSTER_ADVERTISE_URL',
      'WHARF_CLUSTER_REPLICA_NAME',
      'WHARF_REDIS_URL',
      'WHARF_CONFIG',
      'WHARF_LISTEN',
      'WHARF_DATA_DIR',
    ]);
    // The disk stays, smaller: a per-replica cache in front of S3, its budget below the claim.
    const claim = set.spec.volumeClaimTemplates.find((t: Plain) => t.metadata.name === 'data');
    expect(claim.spec.resources.requests.storage).toBe('20Gi');
    expect(config!.cache.maxBytes).toBeLessThan(20 * 2 ** 30);
  });

  it("replicas-redis-s3: its wharf.yaml is the base's plus blobs, cluster and a smaller cache budget", async () => {
    const wharfYaml = async (overlay: 'replicas-redis' | 'replicas-redis-s3') =>
      parseYaml((await renderOverlay(overlay)).find((o) => o.kind === 'ConfigMap')!.data!['wharf.yaml' as never]) as Plain;
    const { blobs, cluster, cache, ...rest } = await wharfYaml('replicas-redis-s3');
    const { cache: baseCache, ...baseRest } = await wharfYaml('replicas-redis');
    expect(rest).toEqual(baseRest);
    expect(Object.keys(cache)).toEqual(Object.keys(baseCache));
    expect([blobs, cluster]).not.toContain(undefined);
  });
});
