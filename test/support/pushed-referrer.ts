// What a registry with the referrers API (or a client keeping the sha256-<hex> tag for one
// without it) records when a manifest with a subject is pushed: the subject and the manifest's
// descriptor in the referrers index (image-spec 1.1). For the test registries that do so.
import { createHash } from 'node:crypto';

export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** The subject and descriptor of a pushed manifest; undefined when it has no valid subject. */
export function pushedReferrer(body: Buffer, contentType: string): { subject: string; descriptor: ReferrerDescriptor } | undefined {
  let m: { subject?: { digest?: unknown }; artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string>; mediaType?: string };
  try {
    m = JSON.parse(body.toString('utf8')) as typeof m;
  } catch {
    return undefined;
  }
  if (typeof m.subject?.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(m.subject.digest)) return undefined;
  const artifactType = m.artifactType ?? m.config?.mediaType;
  return {
    subject: m.subject.digest,
    descriptor: {
      mediaType: m.mediaType ?? contentType,
      digest: `sha256:${createHash('sha256').update(body).digest('hex')}`,
      size: body.length,
      ...(artifactType ? { artifactType } : {}),
      ...(m.annotations ? { annotations: m.annotations } : {}),
    },
  };
}
