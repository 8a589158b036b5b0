// Builds the S3 client the S3 blob store talks through, set up for S3-compatible servers:
// checksums only where an operation requires them (the SDK's default CRC32 checksums, since
// 3.729, break many S3-compatibles: aws/aws-sdk-js-v3#6810), path-style addressing when asked
// (most self-hosted servers have no per-bucket host names), keep-alive connections.
import { S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

export interface S3ClientOptions {
  /** e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000; unset: AWS for the region. */
  readonly endpoint?: string;
  readonly region: string;
  readonly forcePathStyle?: boolean;
  /** Unset: the SDK's chain (env, shared files, instance or pod role). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /** Deadline for a TCP connection (default 5 s). */
  readonly connectTimeoutMs?: number;
  /** Connections kept per protocol (default 64): every streaming reader holds one. */
  readonly maxSockets?: number;
}

export function createS3Client(opts: S3ClientOptions): S3Client {
  const maxSockets = opts.maxSockets ?? 64;
  return new S3Client({
    region: opts.region,
    ...(opts.endpoint !== undefined && { endpoint: opts.endpoint }),
    forcePathStyle: opts.forcePathStyle ?? false,
    ...(opts.credentials && { credentials: opts.credentials }),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Options for the SDK's own Node handler (no import of its transitive package).
    requestHandler: {
      connectionTimeout: opts.connectTimeoutMs ?? 5000,
      // No socket idle timeout: a reader's GET pauses while its client is slow to take bytes,
      // and an idle timeout would cut that stream. Calls without a body are bounded by the store.
      httpAgent: new Agent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
    },
  });
}
