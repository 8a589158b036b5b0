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

/**
 * Keeps `workers` pull loops going (worker w asks pull(w), pull(w + workers), ...) from 300 ms
 * before `breakIt` until `settleMs` after it, and returns every problem they met: under load
 * while something breaks, no pull may fail.
 */
export async function pullProblemsWhile(
  workers: number,
  pull: (n: number) => Promise<string | undefined>,
  breakIt: () => Promise<void>,
  settleMs = 1500,
): Promise<string[]> {
  const failures: string[] = [];
  let running = true;
  const load = Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (let n = worker; running; n += workers) {
        const problem = await pull(n).catch((err: unknown) => String(err));
        if (problem) failures.push(problem);
      }
    }),
  );
  await new Promise((r) => setTimeout(r, 300));
  await breakIt();
  await new Promise((r) => setTimeout(r, settleMs));
  running = false;
  await load;
  return failures;
}
