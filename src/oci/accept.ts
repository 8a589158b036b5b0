// What a client may be sent, by its Accept header, when the stored manifest's media type is not
// one it lists; as the reference registry (distribution 2.8) and Docker Hub answer:
//   - no Accept, or one naming no manifest type at all (*/*, application/json): the stored manifest
//     (clients without Accept, curl and the like, get what is there);
//   - a Docker manifest list asked for by tag by a client that lists Docker image manifests but
//     not lists (the oldest dockerd): the list's linux/amd64 manifest; by digest: the list;
//   - anything else it does not list (an OCI index or manifest to a Docker-only client): 404
//     MANIFEST_UNKNOWN, "OCI index found, but accept header does not support OCI indexes".
// wharf never converts a manifest: the digest a client gets is always of bytes the upstream made.
import { MediaType } from './media-types.ts';

export type Negotiated = 'stored' | 'amd64-child' | 'refused';

const MANIFEST_TYPES: ReadonlySet<string> = new Set(Object.values(MediaType));

export function negotiateManifest(accept: string | undefined, stored: string, byDigest = false): Negotiated {
  // The usual case first, without parsing: the client lists the stored type.
  if (accept === undefined || (accept.includes(stored) && !accept.includes('q=0'))) return 'stored';
  const listed = new Set<string>();
  for (const part of accept.split(',')) {
    const semi = part.indexOf(';');
    const type = (semi === -1 ? part : part.slice(0, semi)).trim().toLowerCase();
    if (/;\s*q\s*=\s*0(\.0*)?\s*(;|$)/.test(part)) continue; // q=0: explicitly not acceptable
    listed.add(type);
  }
  if (listed.has(stored)) return 'stored';
  if (![...listed].some((type) => MANIFEST_TYPES.has(type))) return 'stored';
  if (stored === MediaType.dockerManifestList) return byDigest ? 'stored' : listed.has(MediaType.dockerManifest) ? 'amd64-child' : 'refused';
  return 'refused';
}

/** How distribution words the refusal, by the stored type. */
export function refusalMessage(stored: string): string {
  if (stored === MediaType.ociIndex) return 'OCI index found, but accept header does not support OCI indexes';
  if (stored === MediaType.ociManifest) return 'OCI manifest found, but accept header does not support OCI manifests';
  if (stored === MediaType.dockerManifestList) return 'manifest list found, but accept header does not support manifest lists';
  return `${stored} found, but accept header does not support it`;
}
