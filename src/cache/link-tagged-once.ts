// The start's upgrade step for caches written before repository links existed (linkTaggedImages),
// done once per data dir rather than at every start. The scan reads every tag and its manifest:
// ~0.3 ms of CPU a tag here, half a minute after each start of a cache of 100 000 tags
// (bench/scale.ts), with nothing to link after the first time, since wharf links whatever it
// stores now. A marker file says a complete run happened; a run cut short writes none and is
// done again next start. A tag an older replica writes later into a shared Redis goes unlinked
// until asked for: then its content is confirmed with the upstream first, as before.
import { access, writeFile } from 'node:fs/promises';
import { linkTaggedImages } from './manifest-links.ts';

/** The marker's name in the data dir. */
export const TAG_LINKS_MARKER = 'tag-links-complete';

/** How many tags it linked, or undefined when the marker says it was done already. */
export async function linkTaggedImagesOnce(store: Parameters<typeof linkTaggedImages>[0], markerPath: string): Promise<number | undefined> {
  if (await access(markerPath).then(() => true, () => false)) return undefined;
  const linked = await linkTaggedImages(store);
  await writeFile(markerPath, `linkTaggedImages completed ${new Date().toISOString()}\n`);
  return linked;
}
