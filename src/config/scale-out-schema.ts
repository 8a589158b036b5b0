// The config of a wharf that shares its cache with other replicas: blobs on S3-compatible
// object storage behind the local disk (blobs.s3), and the fill lease and peer endpoint that let
// replicas fetch each blob from the upstream once between them (cluster).
import { z } from 'zod';

const filePath = z.string().min(1, 'expected a file path');

const httpUrl = z
  .url({ protocol: /^https?$/, error: 'expected an http(s) URL such as http://10.0.0.5:5000' })
  .transform((u) => u.replace(/\/+$/, ''));

const MIB = 2 ** 20;

export const s3Schema = z
  .strictObject({
    /** The S3 API's base URL, e.g. http://127.0.0.1:9000 or https://s3.eu-west-1.amazonaws.com. Unset: AWS for the region. */
    endpoint: httpUrl.optional(),
    region: z.string().min(1).default('us-east-1'),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)'),
    /** Put before every key, e.g. "wharf/" (several wharf installations can share a bucket). */
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9!_.*'()-]+\/)*$/, 'expected a key prefix ending in /, such as wharf/')
      .default(''),
    /** Address buckets as endpoint/bucket rather than bucket.endpoint (most self-hosted servers need this). */
    forcePathStyle: z.boolean().default(false),
    /** Files holding the access key id and secret. Unset: the AWS chain (AWS_* env, shared files, instance or pod role). */
    accessKeyIdFile: filePath.optional(),
    secretAccessKeyFile: filePath.optional(),
    /** Multipart part size: memory per upload is about partSize x (queueSize + 1). */
    partSize: z.number().int().min(5 * MIB, 'S3 parts are at least 5 MiB').default(8 * MIB),
    queueSize: z.number().int().min(1).max(16).default(2),
    /** Deadline for an S3 answer's headers; bodies stream at the reader's pace. */
    requestTimeoutMs: z.number().int().positive().default(10_000),
    /**
     * Opt-in: answer a GET of a blob S3 holds but this replica's disk does not with a 307 to a
     * presigned S3 URL, so the bytes do not pass through wharf. Off by default: clients behind
     * firewalls or air gaps often cannot reach the bucket, and bucket egress is billed.
     */
    redirect: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** The S3 address clients reach, when wharf itself uses an internal one (endpoint). */
        publicEndpoint: httpUrl.optional(),
        /** How long a presigned URL is good for. */
        ttlSeconds: z.number().int().min(10).max(7 * 24 * 3600).default(300),
      })
      .prefault({}),
  })
  .refine((s) => (s.accessKeyIdFile === undefined) === (s.secretAccessKeyFile === undefined), {
    message: 'set accessKeyIdFile and secretAccessKeyFile together',
    path: ['accessKeyIdFile'],
  });

export const blobsSchema = z
  .strictObject({
    /** Share blobs on S3-compatible storage; the data dir's disk stays a per-replica cache in front of it. */
    s3: s3Schema.optional(),
  })
  .prefault({});

export const clusterSchema = z.strictObject({
  /** How other replicas reach this one (its peer endpoint), e.g. http://wharf-0.wharf:5000. */
  advertiseUrl: httpUrl,
  /** A file holding the secret replicas show each other (at least 32 characters); the same on every replica. */
  secretFile: filePath,
  /** PEM: the CAs that issue the replicas' HTTPS certificates, when advertiseUrl is https and they are private. */
  caFile: filePath.optional(),
  /** Names this replica on the status page and in leases. Unset: the host name. */
  replicaName: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,63}$/, 'expected a short name: letters, digits, dot, underscore, hyphen')
    .optional(),
  /** A fill lease lapses this long after its holder stopped extending it (it died). */
  leaseMs: z.number().int().min(1000).max(600_000).default(15_000),
});

export type S3Config = z.output<typeof s3Schema>;
export type ClusterConfig = z.output<typeof clusterSchema>;
