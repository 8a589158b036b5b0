// One small pull, checked: a tag's manifest and its config blob through wharf, byte for byte.
// For tests that keep pulling under load while something breaks, and collect what went wrong.
import type { TestImage } from './test-images.ts';

/** What went wrong pulling `repository:tag` (an image with that content), or undefined. */
export async function pullProblem(wharfUrl: string, repository: string, tag: string, image: TestImage): Promise<string | undefined> {
  const m = await fetch(`${wharfUrl}/v2/${repository}/manifests/${tag}`, { headers: { accept: image.manifest.mediaType } });
  const body = Buffer.from(await m.arrayBuffer());
  if (m.status !== 200 || !body.equals(image.manifest.body)) return `manifest ${tag}: ${m.status}`;
  const b = await fetch(`${wharfUrl}/v2/${repository}/blobs/${image.config.digest}`);
  const blob = Buffer.from(await b.arrayBuffer());
  if (b.status !== 200 || !blob.equals(image.config.body)) return `blob ${tag}: ${b.status}, ${blob.length} of ${image.config.body.length} bytes`;
  return undefined;
}
