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
export const OVERLAYS = ['single-node', 'replicas-redis'] as const;

/** The secret files README "Deploying" tells the user to create. */
export const SECRET_FILES = ['dockerhub-token', 'htpasswd', 'token-signing-key.pem'];

export async function renderOverlay(overlay: (typeof OVERLAYS)[number]): Promise<K8sObject[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'wharf-k8s-'));
  try {
    await cp(path.join(REPO_ROOT, 'deploy', 'kubernetes'), dir, { recursive: true });
    for (const f of SECRET_FILES) await writeFile(path.join(dir, 'base', 'secrets', f), `stand-in for ${f}\n`);
    return await kustomizeBuild(path.join(dir, 'overlays', overlay));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
