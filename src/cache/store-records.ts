// What the embedded and Redis manifest stores share: the key rules (so both accept exactly the
// same keys) and the encoding of records, so a value written by one reads the same in the other.
import type { ReferrerDescriptor, ReferrersRecord, RepoKey, StoredManifest, TagListRecord, TagRecord } from './manifest-store.ts';
import { digestOf, parseDigest } from '../oci/digest.ts';
import { isKnownManifestType } from '../oci/media-types.ts';
import { jsonArrayPieces } from '../json-pieces.ts';

const NEWLINE = 0x0a;

// Keys are validated at the edge; this is the last line against path traversal and ambiguous
// Redis keys (upstream has no '/', repository and tag no ':').
export function assertRepoKey(repo: RepoKey): void {
  assertSegment(repo.upstream, 'upstream');
  for (const part of repo.repository.split('/')) assertSegment(part, 'repository', ':');
}

export function assertTag(tag: string): void {
  assertSegment(tag, 'tag', ':');
}

function assertSegment(s: string, what: string, alsoBanned = ''): void {
  if (s === '' || s === '.' || s === '..' || /[/\\\0]/.test(s) || (alsoBanned !== '' && s.includes(alsoBanned))) {
    throw new Error(`manifest store: invalid ${what} ${JSON.stringify(s)}`);
  }
}

/**
 * Why a manifest may not be stored, or undefined when it may: its digest must be the digest of
 * its bytes and its type a manifest type. Checked on the way in and on the way out, so a value
 * that another writer (an older wharf, anything sharing Redis) put is never served unverified.
 */
export function manifestRecordProblem(manifest: StoredManifest): string | undefined {
  if (!isKnownManifestType(manifest.mediaType)) return `media type ${JSON.stringify(manifest.mediaType.slice(0, 100))} is not a manifest type`;
  let algorithm;
  try {
    algorithm = parseDigest(manifest.digest).algorithm;
  } catch {
    return `invalid digest ${JSON.stringify(manifest.digest.slice(0, 150))}`;
  }
  const actual = digestOf(manifest.body, algorithm);
  return actual === manifest.digest ? undefined : `bytes hash to ${actual}, not ${manifest.digest}`;
}

export function assertManifestRecord(manifest: StoredManifest): void {
  const problem = manifestRecordProblem(manifest);
  if (problem) throw new Error(`manifest store: refusing manifest: ${problem}`);
}

/** A manifest as one value: "<mediaType>\n" then the exact body, so a read is one fetch. */
export function encodeManifest(manifest: StoredManifest): Buffer {
  assertManifestRecord(manifest);
  return Buffer.concat([Buffer.from(`${manifest.mediaType}\n`, 'latin1'), manifest.body]);
}

/**
 * No header line, a foreign type or bytes that do not match the digest: treated as not cached.
 * The body is a zero-copy view.
 */
export function decodeManifest(digest: string, value: Buffer): StoredManifest | undefined {
  const eol = value.indexOf(NEWLINE);
  if (eol < 0) return undefined;
  const manifest = { digest, mediaType: value.toString('latin1', 0, eol), body: value.subarray(eol + 1) };
  return manifestRecordProblem(manifest) === undefined ? manifest : undefined;
}

export function encodeTagRecord(record: TagRecord): string {
  return JSON.stringify({ digest: record.digest, mediaType: record.mediaType, fetchedAt: record.fetchedAt });
}

export function decodeTagRecord(value: string): TagRecord | undefined {
  const v = parseJson(value);
  if (typeof v?.digest !== 'string' || typeof v.mediaType !== 'string' || typeof v.fetchedAt !== 'number') return undefined;
  if (!isKnownManifestType(v.mediaType)) return undefined;
  return { digest: v.digest, mediaType: v.mediaType, fetchedAt: v.fetchedAt };
}

export function encodeTagListRecord(record: TagListRecord): string {
  return [...encodeTagListRecordChunks(record)].join('');
}

/**
 * The same text as encodeTagListRecord, in pieces of about 64 K characters: a store that can
 * write pieces never builds one string of a list that may hold 100 000 tags.
 */
export function encodeTagListRecordChunks(record: TagListRecord): Generator<string> {
  return jsonArrayPieces('{"tags":[', record.tags, `],"fetchedAt":${JSON.stringify(record.fetchedAt)}}`);
}

export function decodeTagListRecord(value: string): TagListRecord | undefined {
  const v = parseJson(value);
  if (!Array.isArray(v?.tags) || typeof v.fetchedAt !== 'number') return undefined;
  return { tags: v.tags.filter((t): t is string => typeof t === 'string'), fetchedAt: v.fetchedAt };
}

export function encodeReferrersRecord(record: ReferrersRecord): string {
  return JSON.stringify({ upstream: record.upstream, fetchedAt: record.fetchedAt, api: record.api, held: record.held });
}

export function decodeReferrersRecord(value: string): ReferrersRecord | undefined {
  const v = parseJson(value);
  if (!Array.isArray(v?.upstream) || !Array.isArray(v.held) || typeof v.fetchedAt !== 'number' || typeof v.api !== 'boolean') return undefined;
  return { upstream: v.upstream.filter(isReferrerDescriptor), fetchedAt: v.fetchedAt, api: v.api, held: v.held.filter(isReferrerDescriptor) };
}

function isReferrerDescriptor(d: unknown): d is ReferrerDescriptor {
  if (typeof d !== 'object' || d === null) return false;
  const o = d as Record<string, unknown>;
  return typeof o.mediaType === 'string' && typeof o.digest === 'string' && typeof o.size === 'number' && (o.artifactType === undefined || typeof o.artifactType === 'string');
}

/** A torn or foreign value reads as missing rather than failing the request. */
function parseJson(value: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(value);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
