// How `wharf warm` tells a person what it does: a progress bar on a terminal, plain lines
// otherwise (CI logs), and a summary at the end.
import { SingleBar, Presets } from 'cli-progress';
import type { Writable } from 'node:stream';
import type { WarmEvent, WarmSummary } from './warm.ts';
import { megabytes } from './format.ts';

export interface WarmReporter {
  onEvent(event: WarmEvent): void;
  finish(summary: WarmSummary): void;
}

export function createWarmReporter(out: Writable & { isTTY?: boolean }): WarmReporter {
  return out.isTTY ? barReporter(out) : lineReporter(out);
}

function lineReporter(out: Writable): WarmReporter {
  return {
    onEvent(e) {
      if (e.type === 'planned') out.write(`${e.ref}: ${e.blobs} blobs, ${megabytes(e.bytes)}\n`);
      else if (e.type === 'blob') out.write(`${e.ref}: ${e.digest} ${e.cached ? 'already cached' : `fetched ${megabytes(e.bytes)}`}\n`);
      else if (e.type === 'failed') out.write(`${e.ref}: FAILED ${e.error}\n`);
    },
    finish: (summary) => out.write(summaryText(summary)),
  };
}

function barReporter(out: Writable): WarmReporter {
  const bar = new SingleBar(
    { stream: out as NodeJS.WriteStream, format: 'warming [{bar}] {percentage}% | {value_mb}/{total_mb} MB | {blobs} blobs', hideCursor: true },
    Presets.shades_classic,
  );
  let total = 0;
  let done = 0;
  let blobs = 0;
  let started = false;
  const payload = () => ({ value_mb: (done / 1e6).toFixed(1), total_mb: (total / 1e6).toFixed(1), blobs });
  return {
    onEvent(e) {
      if (e.type === 'planned') {
        total += e.bytes;
        if (!started) bar.start(total, 0, payload());
        started = true;
        bar.setTotal(total);
      } else if (e.type === 'progress') {
        done += e.bytes;
        bar.update(done, payload());
      } else if (e.type === 'blob') {
        blobs++;
        // A cached blob is not downloaded: count it as done at once.
        if (e.cached) done += e.bytes;
        bar.update(done, payload());
      } else if (e.type === 'failed') {
        bar.stop();
        out.write(`${e.ref}: FAILED ${e.error}\n`);
        if (started) bar.start(total, done, payload());
      }
    },
    finish(summary) {
      if (started) bar.stop();
      out.write(summaryText(summary));
    },
  };
}

function summaryText(s: WarmSummary): string {
  const warmed = s.images - new Set(s.failed.map((f) => f.ref)).size;
  return `warmed ${warmed} of ${s.images} images: ${s.fetchedBlobs} blobs fetched (${megabytes(s.fetchedBytes)}), ${s.cachedBlobs} already cached, ${s.failed.length} failed\n`;
}
