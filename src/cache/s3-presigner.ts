// Presigned GET URLs for blobs on S3 (blobs.s3.redirect): signed against the endpoint clients
// reach (publicEndpoint), which may not be the one wharf uses itself, with a short lifetime.
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { parseDigest } from '../oci/digest.ts';

export function createPresigner(opts: { client: S3Client; bucket: string; prefix: string; ttlSeconds: number }): (digest: string) => Promise<string> {
  return (digest) => {
    const { algorithm, hex } = parseDigest(digest);
    // The same key s3-blob-store.ts writes.
    const command = new GetObjectCommand({ Bucket: opts.bucket, Key: `${opts.prefix}blobs/${algorithm}/${hex}` });
    return getSignedUrl(opts.client, command, { expiresIn: opts.ttlSeconds });
  };
}
