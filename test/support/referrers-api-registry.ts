// A registry with the referrers API (distribution-spec 1.1) made of the real registry 2.8 and a
// front: every request is passed to the registry, a manifest pushed with a `subject` is
// recorded (and the push answered with OCI-Subject, as 1.1 registries do), and
// GET /v2/<name>/referrers/<digest> is answered from those records, filtered by artifactType
// with OCI-Filters-Applied. Loopback only.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pushedReferrer, type ReferrerDescriptor } from './pushed-referrer.ts';


export interface ReferrersApiRegistry {
  readonly url: string;
  /** Every referrers request, path and query as received. */
  readonly referrersAsked: string[];
  stop(): Promise<void>;
}

const REFERRERS = /^\/v2\/(.+)\/referrers\/([^/?]+)$/;
const MANIFEST = /^\/v2\/(.+)\/manifests\/([^/?]+)$/;

export async function startReferrersApiRegistry(registryUrl: string): Promise<ReferrersApiRegistry> {
  const target = new URL(registryUrl);
  const referrers = new Map<string, ReferrerDescriptor[]>();
  const referrersAsked: string[] = [];

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, onAnswer?: (status: number, headers: Record<string, string>) => void) => {
    const headers = { ...req.headers, host: target.host };
    if (body) headers['content-length'] = String(body.length);
    const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (upRes) => {
      const extra: Record<string, string> = {};
      onAnswer?.(upRes.statusCode ?? 502, extra);
      res.writeHead(upRes.statusCode ?? 502, { ...upRes.headers, ...extra });
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    if (body) up.end(body);
    else req.pipe(up);
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const asked = REFERRERS.exec(url.pathname);
    if (asked && (req.method === 'GET' || req.method === 'HEAD')) {
      referrersAsked.push(req.url ?? '');
      const artifactType = url.searchParams.get('artifactType');
      const all = referrers.get(`${asked[1]}@${decodeURIComponent(asked[2]!)}`) ?? [];
      const manifests = artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
      const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.index.v1+json',
        'content-length': String(body.length),
        'docker-distribution-api-version': 'registry/2.0',
        ...(artifactType ? { 'oci-filters-applied': 'artifactType' } : {}),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const pushed = MANIFEST.exec(url.pathname);
    if (!pushed || req.method !== 'PUT') return forward(req, res, undefined);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      forward(req, res, body, (status, extra) => {
        if (status !== 201) return;
        const entry = pushedReferrer(body, req.headers['content-type'] ?? '');
        if (!entry) return;
        const key = `${pushed[1]}@${entry.subject}`;
        const list = referrers.get(key) ?? [];
        if (!list.some((d) => d.digest === entry.descriptor.digest)) list.push(entry.descriptor);
        referrers.set(key, list);
        extra['OCI-Subject'] = entry.subject;
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    referrersAsked,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
