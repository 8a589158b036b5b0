// Times every S3 request of the shared blob store, by operation and outcome, through the SDK's
// middleware stack: once per command, retries included, until the answer's headers (a GET's
// body streams afterwards at the reader's pace).
import type { S3Client } from '@aws-sdk/client-s3';
import type { Metrics } from '../metrics/metrics.ts';

export function observeS3Requests(client: S3Client, metrics: Metrics): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = (context.commandName ?? 'unknown').replace(/Command$/, '');
      const stop = metrics.s3Requests.startTimer({ operation });
      try {
        const out = await next(args);
        stop({ outcome: 'ok' });
        return out;
      } catch (err) {
        // A HEAD of a blob S3 does not have is an answer, not a failure: it says NotFound.
        stop({ outcome: (err as { name?: string }).name ?? 'error' });
        throw err;
      }
    },
    { step: 'initialize', name: 'wharfS3Metrics' },
  );
}
