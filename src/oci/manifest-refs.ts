// What a manifest refers to: child manifests (an index) and blobs (config and layers). Used to
// pin images, to keep an image's blobs recent while it is being pulled, and to walk images for
// warm, export and gc.

export interface ManifestRefs {
  /** Manifests an index lists, with their media types. */
  readonly manifests: ReadonlyArray<{ digest: string; mediaType: string | undefined; platform?: { os?: string; architecture?: string; variant?: string } }>;
  /** Config and layer blobs of an image manifest. */
  readonly blobs: readonly string[];
}

export function manifestRefs(body: Buffer): ManifestRefs {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return { manifests: [], blobs: [] };
  }
  if (typeof doc !== 'object' || doc === null) return { manifests: [], blobs: [] };
  const d = doc as Record<string, unknown>;
  const manifests = Array.isArray(d.manifests)
    ? d.manifests.filter(isDescriptor).map((m) => ({ digest: m.digest, mediaType: m.mediaType, platform: m.platform }))
    : [];
  const blobs: string[] = [];
  if (isDescriptor(d.config)) blobs.push(d.config.digest);
  if (Array.isArray(d.layers)) for (const l of d.layers) if (isDescriptor(l)) blobs.push(l.digest);
  // Docker schema 1: layers are fsLayers[].blobSum.
  if (Array.isArray(d.fsLayers)) for (const l of d.fsLayers) if (typeof l?.blobSum === 'string') blobs.push(l.blobSum);
  return { manifests, blobs: [...new Set(blobs)] };
}

interface Descriptor {
  digest: string;
  mediaType: string | undefined;
  platform?: { os?: string; architecture?: string; variant?: string };
}

function isDescriptor(value: unknown): value is Descriptor {
  return typeof value === 'object' && value !== null && typeof (value as { digest?: unknown }).digest === 'string';
}
