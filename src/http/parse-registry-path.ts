// Turns a /v2/... path into what it asks for. Names may contain slashes, so the endpoint is
// recognised from the end of the path.

export type RegistryPath =
  | { readonly kind: 'base' }
  | { readonly kind: 'manifest'; readonly name: string; readonly reference: string }
  | { readonly kind: 'blob'; readonly name: string; readonly digest: string }
  | { readonly kind: 'upload'; readonly name: string }
  | { readonly kind: 'tags'; readonly name: string }
  | { readonly kind: 'referrers'; readonly name: string; readonly digest: string }
  | { readonly kind: 'catalog' }
  | { readonly kind: 'unknown' };

const MANIFEST = /^\/v2\/(.+)\/manifests\/([^/]+)$/;
const UPLOAD = /^\/v2\/(.+)\/blobs\/uploads(?:\/.*)?$/;
const BLOB = /^\/v2\/(.+)\/blobs\/([^/]+)$/;
const TAGS = /^\/v2\/(.+)\/tags\/list$/;
const REFERRERS = /^\/v2\/(.+)\/referrers\/([^/]+)$/;

export function parseRegistryPath(path: string): RegistryPath {
  if (path === '/v2' || path === '/v2/') return { kind: 'base' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  let m = UPLOAD.exec(path);
  if (m) return { kind: 'upload', name: m[1]! };
  m = MANIFEST.exec(path);
  if (m) return { kind: 'manifest', name: m[1]!, reference: safeDecode(m[2]!) };
  m = BLOB.exec(path);
  if (m) return { kind: 'blob', name: m[1]!, digest: safeDecode(m[2]!) };
  m = TAGS.exec(path);
  if (m) return { kind: 'tags', name: m[1]! };
  m = REFERRERS.exec(path);
  if (m) return { kind: 'referrers', name: m[1]!, digest: safeDecode(m[2]!) };
  return { kind: 'unknown' };
}

// Clients may percent-encode the ':' of a digest; a broken escape is left as is and then
// fails the grammar check with a 4xx.
function safeDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
