// Which blobs a served manifest marks as used: all of them the first time, none while it was
// reported lately, all again once that while is over; and that holds for as many manifests as
// are held, not for the last few thousand only (bench/scale.ts serves 10 000 tags at random).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { StoredManifest } from '../../src/cache/manifest-store.ts';
import { REPORT_EVERY_MS, ServedManifests } from '../../src/cache/served-manifests.ts';

const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

function image(i: number): { manifest: StoredManifest; blobs: string[] } {
  const config = sha(`config ${i}`);
  const layer = sha(`layer ${i}`);
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: 3 }],
    }),
  );
  return { manifest: { digest: sha(body.toString()), mediaType: 'application/vnd.oci.image.manifest.v1+json', body }, blobs: [config, layer] };
}

describe('ServedManifests', () => {
  it('reports a manifest’s blobs once per while', () => {
    let now = 1_000_000;
    const served = new ServedManifests(() => now);
    const { manifest, blobs } = image(1);
    expect([...served.blobsToMarkUsed(manifest)].sort()).toEqual([...blobs].sort());
    now += REPORT_EVERY_MS - 1;
    expect(served.blobsToMarkUsed(manifest)).toEqual([]);
    now += 1;
    expect([...served.blobsToMarkUsed(manifest)].sort()).toEqual([...blobs].sort());
    expect(served.blobsToMarkUsed(manifest)).toEqual([]);
  });

  it('remembers every manifest served within the while, however many', () => {
    const now = 1_000_000;
    const served = new ServedManifests(() => now);
    const images = Array.from({ length: 10_000 }, (_, i) => image(i));
    for (const { manifest, blobs } of images) expect(served.blobsToMarkUsed(manifest)).toHaveLength(blobs.length);
    // A second round within the while reports nothing: no manifest was forgotten.
    const reportedAgain = images.filter(({ manifest }) => served.blobsToMarkUsed(manifest).length > 0);
    expect(reportedAgain).toHaveLength(0);
  });
});
