// A real HTTP proxy in front of a real S3 server, for what a lenient server (s3rver) cannot show:
// it records every request (with its If-None-Match), and can answer publishes (a PutObject of a
// blob, a CompleteMultipartUpload) or every request with a chosen status and S3 error body.
// Loopback only.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Request {
  readonly method: string;
  readonly path: string;
  readonly ifNoneMatch: string | undefined;
  /** A PutObject under blobs/ or a CompleteMultipartUpload: what makes a blob visible. */
  readonly publish: boolean;
}

export interface S3FaultProxy {
  readonly endpoint: string;
  readonly requests: S3Request[];
  /** Answer publishes with this status (e.g. 412 as when another replica published first). */
  failPublishWith: { status: number; code: string } | undefined;
  /** Answer every request with this status. */
  failAllWith: { status: number; code: string } | undefined;
  /** Forward this many bytes of an object GET's body, then send nothing more (a hung server). */
  stallGetsAfter: number | undefined;
  stop(): Promise<void>;
}

function isPublish(req: IncomingMessage): boolean {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method === 'POST' && url.searchParams.has('uploadId')) return true;
  return req.method === 'PUT' && url.pathname.includes('/blobs/') && !url.searchParams.has('partNumber');
}

export async function startS3FaultProxy(targetEndpoint: string): Promise<S3FaultProxy> {
  const target = new URL(targetEndpoint);
  const state: S3FaultProxy = { endpoint: '', requests: [], failPublishWith: undefined, failAllWith: undefined, stallGetsAfter: undefined, stop: async () => undefined };
  const server: Server = createServer((req, res) => {
    const publish = isPublish(req);
    const url = new URL(req.url ?? '/', 'http://x');
    const header = req.headers['if-none-match'];
    state.requests.push({ method: req.method ?? 'GET', path: req.url ?? '', ifNoneMatch: Array.isArray(header) ? header[0] : header, publish });
    const fault = state.failAllWith ?? (publish ? state.failPublishWith : undefined);
    if (fault) {
      // Read the body first, as a server does, so the client is not cut mid-upload.
      req.resume();
      req.once('end', () => {
        res.writeHead(fault.status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.code}</Code><Message>injected fault</Message></Error>`);
      });
      return;
    }
    const forwarded = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        const stallAfter = req.method === 'GET' && url.pathname.includes('/blobs/') ? state.stallGetsAfter : undefined;
        if (stallAfter === undefined) {
          answer.pipe(res);
          return;
        }
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          const n = Math.max(0, Math.min(chunk.length, stallAfter - sent));
          if (n > 0) res.write(chunk.subarray(0, n));
          sent += n;
        });
      },
    );
    forwarded.once('error', () => res.destroy());
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
