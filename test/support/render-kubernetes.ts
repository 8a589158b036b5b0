// Renders an overlay of deploy/kubernetes/ as a user would after putting the credentials in
// base/secrets/: a copy of the tree in a temp dir, with stand-in secret files (git ignores the
// real ones, so the checkout has none).
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kustomizeBuild, type K8sObject } from './kustomize-lite.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DOCKERFILE = path.join(REPO_ROOT, 'Dockerfile');
export const OVERLAYS = ['single-node', 'replicas-redis', 'replicas-redis-s3'] as const;
export type Overlay = (typeof OVERLAYS)[number];

/** The secret files README "Deploying" tells the user to create. */
export const SECRET_FILES = ['dockerhub-token', 'htpasswd', 'token-signing-key.pem'];

/** The secret files an overlay's own secretGenerator reads from its secrets/ (README "Scale out"). */
export const OVERLAY_SECRET_FILES: Record<Overlay, string[]> = {
  'single-node': [],
  'replicas-redis': [],
  'replicas-redis-s3': ['s3-access-key-id', 's3-secret-access-key', 'cluster-secret'],
};

export async function renderOverlay(overlay: Overlay): Promise<K8sObject[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'wharf-k8s-'));
  try {
    await cp(path.join(REPO_ROOT, 'deploy', 'kubernetes'), dir, { recursive: true });
    for (const f of SECRET_FILES) await writeFile(path.join(dir, 'base', 'secrets', f), `stand-in for ${f}\n`);
    for (const f of OVERLAY_SECRET_FILES[overlay]) await writeFile(path.join(dir, 'overlays', overlay, 'secrets', f), `stand-in for ${f}, long enough for a cluster secret\n`);
    return await kustomizeBuild(path.join(dir, 'overlays', overlay));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
