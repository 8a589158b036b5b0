// A hostile registry upstream for blob tests: /v2/ answers 200 and each blob is served the way
// its switch says: whole, dripped slowly (staying inside any idle timeout), stalled part-way,
// with wrong bytes of the right length, or cut short of its length. Counts GETs per path. Loopback only.
import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type BlobBehaviour =
  | { readonly kind: 'whole' }
  /** `bytes` every `everyMs` until the body is done. */
  | { readonly kind: 'drip'; readonly bytes: number; readonly everyMs: number }
  /** The first `afterBytes`, a pause of `pauseMs`, then the rest. */
  | { readonly kind: 'stall'; readonly afterBytes: number; readonly pauseMs: number }
  /** The right length, with the byte at `at` flipped; sent like `then` (whole by default). */
  | { readonly kind: 'corrupt'; readonly at: number; readonly then?: BlobBehaviour }
  /** The first `bytes` of the announced length, then the connection is cut. */
  | { readonly kind: 'short'; readonly bytes: number };

export interface BlobUpstream {
  readonly url: string;
  /** Serves `body` as blob `digest` (its sha256) of the given repositories (default: any), behaving as told. */
  serve(body: Buffer, behaviour?: BlobBehaviour, repositories?: readonly string[]): string;
  behave(digest: string, behaviour: BlobBehaviour): void;
  /** GET requests for this blob so far. */
  gets(digest: string): number;
  /** HEAD requests for this blob so far, by repository. */
  heads(digest: string, repository: string): number;
  /** The most requests it has had open at once (from arrival to the answer's end). */
  maxInFlight(): number;
  stop(): Promise<void>;
}

const BLOB_PATH = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/;

export async function startBlobUpstream(): Promise<BlobUpstream> {
  const blobs = new Map<string, { body: Buffer; behaviour: BlobBehaviour; gets: number; repositories?: readonly string[] }>();
  const heads = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const send = (res: ServerResponse, body: Buffer, behaviour: BlobBehaviour): void => {
    if (behaviour.kind === 'whole') {
      res.end(body);
    } else if (behaviour.kind === 'corrupt') {
      const wrong = Buffer.from(body);
      wrong[behaviour.at] = wrong[behaviour.at]! ^ 0xff;
      send(res, wrong, behaviour.then ?? { kind: 'whole' });
    } else if (behaviour.kind === 'short') {
      res.write(body.subarray(0, behaviour.bytes), () => later(20, () => res.destroy()));
    } else if (behaviour.kind === 'stall') {
      res.write(body.subarray(0, behaviour.afterBytes));
      later(behaviour.pauseMs, () => res.end(body.subarray(behaviour.afterBytes)));
    } else {
      let offset = 0;
      const drip = () => {
        if (res.destroyed) return;
        const next = body.subarray(offset, offset + behaviour.bytes);
        offset += next.length;
        if (offset >= body.length) res.end(next);
        else {
          res.write(next);
          later(behaviour.everyMs, drip);
        }
      };
      drip();
    }
  };

  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    const path = (req.url ?? '').split('?')[0]!;
    if (path === '/v2/' || path === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    const m = BLOB_PATH.exec(path);
    const blob = m ? blobs.get(m[2]!) : undefined;
    const inRepository = blob && (!blob.repositories || blob.repositories.includes(m![1]!));
    if (m && req.method === 'HEAD') heads.set(`${m[1]}@${m[2]}`, (heads.get(`${m[1]}@${m[2]}`) ?? 0) + 1);
    if (!blob || !inRepository || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(blob.body.length), 'docker-content-digest': m![2]! });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    blob.gets++;
    res.flushHeaders();
    send(res, blob.body, blob.behaviour);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    serve(body, behaviour = { kind: 'whole' }, repositories) {
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      blobs.set(digest, { body, behaviour, gets: 0, repositories });
      return digest;
    },
    behave(digest, behaviour) {
      const blob = blobs.get(digest);
      if (!blob) throw new Error(`not served: ${digest}`);
      blob.behaviour = behaviour;
    },
    gets: (digest) => blobs.get(digest)?.gets ?? 0,
    heads: (digest, repository) => heads.get(`${repository}@${digest}`) ?? 0,
    maxInFlight: () => maxInFlight,
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
