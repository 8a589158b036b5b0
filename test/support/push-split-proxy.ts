// One registry endpoint for a client that pushes and then reads, in front of wharf, which takes
// no pushes: writes (and upload sessions, reads included) go to the upstream registry, every
// other GET and HEAD to wharf. The OCI conformance suite is run through it (docs/conformance.md).
//
// With referrersTagFallback, a manifest pushed with a `subject` that the upstream did not index
// (its answer has no OCI-Subject, as with registry 2.8) is added to the referrers tag
// sha256-<hex> on the upstream: the client's part of distribution-spec 1.1, done here as oras
// and regclient do it, since the suite does not do it. The push is then answered with
// OCI-Subject, because the referrer is now one wharf's referrers API lists. Loopback only.
import { createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pushedReferrer, type ReferrerDescriptor } from './pushed-referrer.ts';

export interface PushSplitProxy {
  readonly url: string;
  /** Referrers tags written by the fallback, as `<name>:<tag>`, in order. */
  readonly fallbackTags: string[];
  stop(): Promise<void>;
}

interface Answer {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
}


interface ReferrersIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: ReferrerDescriptor[];
}

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = /^\/v2\/(.+)\/manifests\/([^/]+)$/;
const UPLOADS = /^\/v2\/.+\/blobs\/uploads\//;
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export async function startPushSplitProxy(opts: { upstreamUrl: string; wharfUrl: string; referrersTagFallback: boolean }): Promise<PushSplitProxy> {
  const upstream = new URL(opts.upstreamUrl);
  const wharf = new URL(opts.wharfUrl);
  const fallbackTags: string[] = [];
  // One referrers tag is read, extended and written back: updates of one tag wait for each other.
  const tagQueues = new Map<string, Promise<void>>();

  const pipeTo = (target: URL, req: IncomingMessage, res: ServerResponse) => {
    const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  };

  const addToReferrersTag = async (name: string, subject: string, descriptor: ReferrerDescriptor) => {
    const tag = `sha256-${subject.slice('sha256:'.length)}`;
    const path = `/v2/${name}/manifests/${tag}`;
    const got = await call(upstream, 'GET', path, { accept: OCI_INDEX });
    if (got.status !== 200 && got.status !== 404) throw new Error(`GET ${path}: ${got.status}`);
    const index: ReferrersIndex = got.status === 200 ? (JSON.parse(got.body.toString('utf8')) as ReferrersIndex) : { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
    if (index.manifests.some((d) => d.digest === descriptor.digest)) return;
    index.manifests.push(descriptor);
    const put = await call(upstream, 'PUT', path, { 'content-type': OCI_INDEX }, Buffer.from(JSON.stringify(index)));
    if (put.status !== 201) throw new Error(`PUT ${path}: ${put.status} ${put.body.toString('utf8')}`);
    fallbackTags.push(`${name}:${tag}`);
  };

  const pushManifest = async (req: IncomingMessage, res: ServerResponse, name: string) => {
    const body = await readBody(req);
    const headers: OutgoingHttpHeaders = { ...req.headers, 'content-length': String(body.length) };
    const answer = await call(upstream, 'PUT', req.url!, headers, body);
    const referrer = answer.status === 201 ? pushedReferrer(body, String(req.headers['content-type'] ?? '')) : undefined;
    const extra: OutgoingHttpHeaders = {};
    if (referrer && opts.referrersTagFallback && !answer.headers['oci-subject']) {
      const key = `${name}@${referrer.subject}`;
      const update = (tagQueues.get(key) ?? Promise.resolve()).then(() => addToReferrersTag(name, referrer.subject, referrer.descriptor));
      tagQueues.set(key, update.catch(() => undefined));
      await update;
      extra['oci-subject'] = referrer.subject;
    }
    res.writeHead(answer.status, { ...answer.headers, ...extra });
    res.end(answer.body);
  };

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const pushed = MANIFEST.exec(path);
    if (req.method === 'PUT' && pushed) {
      pushManifest(req, res, pushed[1]!).catch((err: Error) => {
        // Loud: a fallback that failed must not look like a registry that ignored the subject.
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`push-split proxy: ${err.message}\n`);
      });
      return;
    }
    const read = (req.method === 'GET' || req.method === 'HEAD') && !UPLOADS.test(path);
    pipeTo(read ? wharf : upstream, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    fallbackTags,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function call(target: URL, method: string, path: string, headers: OutgoingHttpHeaders, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const up = httpRequest({ host: target.hostname, port: target.port, method, path, headers }, (upRes) => {
      readBody(upRes).then((b) => resolve({ status: upRes.statusCode ?? 502, headers: upRes.headers, body: b }), reject);
    });
    up.on('error', reject);
    up.end(body);
  });
}

function readBody(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_MANIFEST_BYTES) stream.destroy(new Error(`body over ${MAX_MANIFEST_BYTES} bytes`));
      else chunks.push(c);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
