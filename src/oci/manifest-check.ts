// Decides whether bytes from an upstream (or a bundle) are a manifest wharf may cache, and of
// which type. Only the four image manifest and index types pass, and only with the JSON shape of
// their type: a captive portal's HTML, a JSON array, a schema1 manifest or a body naming a
// made-up media type are refused before anything is stored or sent.
import { baseMediaType, isIndexType, isKnownManifestType, isValidMediaType, MediaType, SCHEMA1_MEDIA_TYPES } from './media-types.ts';
import { looksLikeDigest } from './digest.ts';

export type ManifestCheck = { readonly ok: true; readonly mediaType: string } | { readonly ok: false; readonly why: string };

/** Content-Types an upstream may send for a manifest without naming its type. */
const GENERIC_TYPES = new Set(['', 'application/json', 'application/octet-stream']);

export function checkManifest(contentType: string | undefined, body: Buffer): ManifestCheck {
  const header = baseMediaType(contentType);
  if (SCHEMA1_MEDIA_TYPES.has(header)) return refuse('schema1 manifests (deprecated) are not cached');
  if (!isKnownManifestType(header) && !GENERIC_TYPES.has(header)) return refuse(`Content-Type ${printable(header)} is not a manifest type`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return refuse('body is not JSON');
  }
  if (!isObject(parsed)) return refuse('body is not a JSON object');
  const declared = parsed.mediaType;
  if (declared !== undefined && typeof declared !== 'string') return refuse('mediaType is not a string');
  if (parsed.schemaVersion === 1 || (declared !== undefined && SCHEMA1_MEDIA_TYPES.has(declared))) {
    return refuse('schema1 manifests (deprecated) are not cached');
  }
  if (declared !== undefined && !isKnownManifestType(declared)) return refuse(`mediaType ${printable(declared)} is not a manifest type`);
  if (declared !== undefined && isKnownManifestType(header) && declared !== header) {
    return refuse(`mediaType ${declared} contradicts Content-Type ${header}`);
  }
  const mediaType = declared ?? (isKnownManifestType(header) ? header : inferOciType(parsed));
  if (!mediaType) return refuse('body has neither a mediaType nor the shape of a manifest or index');
  const why = shapeProblem(mediaType, parsed);
  return why ? refuse(why) : { ok: true, mediaType };
}

/** OCI allows mediaType to be left out: the shape tells an index from an image manifest. */
function inferOciType(parsed: Record<string, unknown>): string | undefined {
  if (Array.isArray(parsed.manifests)) return MediaType.ociIndex;
  if (isObject(parsed.config) && Array.isArray(parsed.layers)) return MediaType.ociManifest;
  return undefined;
}

function shapeProblem(mediaType: string, m: Record<string, unknown>): string | undefined {
  if (m.schemaVersion !== 2) return 'schemaVersion is not 2';
  if (m.artifactType !== undefined && !(typeof m.artifactType === 'string' && isValidMediaType(m.artifactType))) return 'invalid artifactType';
  if (m.subject !== undefined) {
    const why = descriptorProblem(m.subject);
    if (why) return `subject: ${why}`;
  }
  if (m.annotations !== undefined && !isStringMap(m.annotations)) return 'annotations must map strings to strings';
  if (isIndexType(mediaType)) return listProblem('manifests', m.manifests);
  const config = descriptorProblem(m.config);
  if (config) return `config: ${config}`;
  return listProblem('layers', m.layers);
}

function listProblem(name: string, value: unknown): string | undefined {
  if (!Array.isArray(value)) return `${name} is not an array`;
  for (const [i, d] of value.entries()) {
    const why = descriptorProblem(d);
    if (why) return `${name}[${i}]: ${why}`;
  }
  return undefined;
}

function descriptorProblem(d: unknown): string | undefined {
  if (!isObject(d)) return 'not a descriptor object';
  if (typeof d.mediaType !== 'string' || !isValidMediaType(d.mediaType)) return 'invalid mediaType';
  if (typeof d.digest !== 'string' || !looksLikeDigest(d.digest)) return 'invalid digest';
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) return 'invalid size';
  if (d.artifactType !== undefined && !(typeof d.artifactType === 'string' && isValidMediaType(d.artifactType))) return 'invalid artifactType';
  if (d.urls !== undefined && !(Array.isArray(d.urls) && d.urls.every((u) => typeof u === 'string'))) return 'urls must be strings';
  if (d.annotations !== undefined && !isStringMap(d.annotations)) return 'annotations must map strings to strings';
  if (d.platform !== undefined && !(isObject(d.platform) && typeof d.platform.os === 'string' && typeof d.platform.architecture === 'string')) {
    return 'invalid platform';
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringMap(v: unknown): boolean {
  return isObject(v) && Object.values(v).every((s) => typeof s === 'string');
}

/** A value from the network, safe to put in a log line or error message. */
function printable(s: string): string {
  return JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}...` : s);
}

function refuse(why: string): ManifestCheck {
  return { ok: false, why };
}
