// GET /_wharf/peer/blobs/<digest>: what another replica reads when this one holds the digest's
// fill lease (cluster/fill-leases.ts): the running fill, streamed as it grows with its last
// byte held back until verified, or the blob from this replica's cache. It never starts a fill
// and answers only callers with the cluster secret: the asking replica checked its client's access.
import type { Hono } from 'hono';
import { BlobUnknownError, PeerUnauthorizedError } from '../errors.ts';
import { parseDigest } from '../oci/digest.ts';
import type { BlobService } from '../proxy/blob-service.ts';
import type { ClusterSecret } from '../cluster/cluster-secret.ts';
import { PEER_BLOB_PATH } from '../cluster/peer-client.ts';
import { sendBlob } from './blob-route.ts';
import type { FileSender } from './file-sender.ts';
import type { WharfEnv } from './wharf-env.ts';

export function addPeerRoute(app: Hono<WharfEnv>, deps: { secret: ClusterSecret; blobs: BlobService; files: FileSender }): void {
  app.get(`${PEER_BLOB_PATH}:digest`, async (c) => {
    if (!deps.secret.admits(c.req.header('authorization'))) throw new PeerUnauthorizedError();
    const digest = parseDigest(c.req.param('digest')).value;
    const source = await deps.blobs.openForPeer(digest);
    if (!source) throw new BlobUnknownError(digest);
    return sendBlob(c.env.outgoing, source, { digest, rangeHeader: c.req.header('range'), namespace: undefined, files: deps.files });
  });
}
