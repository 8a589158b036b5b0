// The fast connections' request reader takes only the plainest requests, and reads them as
// Node does; everything else must come back NOT_SIMPLE (Node's to read) or INCOMPLETE.
import { describe, expect, it } from 'vitest';
import { INCOMPLETE, NOT_SIMPLE, readSimpleRequest, type SimpleRequest } from '../../src/http/simple-request.ts';

const read = (text: string, from = 0, maxHead = 16_384, maxHeaders = 2000) => readSimpleRequest(Buffer.from(text, 'latin1'), from, maxHead, maxHeaders);

describe('readSimpleRequest', () => {
  it('reads a GET with the headers the fast path uses, OWS trimmed, Accept headers joined as Node joins them', () => {
    const text = 'GET /v2/a/manifests/b?ns=docker.io HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nAccept:  x/a \t\r\naccept: x/b\r\nAuthorization: Bearer t\r\nX-Request-Id: ci-1\r\nUser-Agent: docker/27\r\nX-Other: \xe9\r\n\r\n';
    const request = read(text) as SimpleRequest;
    expect(request).toEqual({
      method: 'GET',
      url: '/v2/a/manifests/b?ns=docker.io',
      accept: 'x/a, x/b',
      authorization: 'Bearer t',
      host: '127.0.0.1:5000',
      requestId: 'ci-1',
      userAgent: 'docker/27',
      length: text.length,
    });
  });

  it('reads HEAD, a head with no headers, and a request that starts further on (pipelined)', () => {
    const first = 'HEAD /v2/a/manifests/b HTTP/1.1\r\n\r\n';
    expect(read(first)).toMatchObject({ method: 'HEAD', url: '/v2/a/manifests/b', accept: undefined, length: first.length });
    const second = 'GET /v2/c/manifests/d HTTP/1.1\r\nHost: h\r\n\r\n';
    expect(read(first + second, first.length)).toMatchObject({ method: 'GET', url: '/v2/c/manifests/d', host: 'h', length: second.length });
  });

  it('waits for the rest of a head, and gives up on one past the size limit', () => {
    expect(read('GET /v2/a/manifests/b HTTP/1.1\r\nHost: h\r\n')).toBe(INCOMPLETE);
    for (const start of ['G', 'GE', 'GET', 'GET ', 'GET /', 'H', 'HEAD', 'HEAD /v2']) expect(read(start), start).toBe(INCOMPLETE);
    expect(read('GET /v2/a/manifests/b HTTP/1.1\r\nHost: h\r\n\r')).toBe(INCOMPLETE);
    expect(read(`GET /v2/a/manifests/b HTTP/1.1\r\nX: ${'a'.repeat(200)}`, 0, 100)).toBe(NOT_SIMPLE);
    expect(read(`GET /v2/a/manifests/b HTTP/1.1\r\nX: ${'a'.repeat(200)}\r\n\r\n`, 0, 100)).toBe(NOT_SIMPLE);
    expect(read('GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n', 0, 16_384, 2)).toBe(NOT_SIMPLE);
  });

  it.each([
    ['the start of a TLS ClientHello', '\x16\x03\x01\x00\xde\x01\x00\x00'],
    ['the start of another method', 'POST /v2/a HTT'],
    ['the start of an HTTP/2 preface', 'PRI * HTTP/2.0\r\n'],
    ['the start of an absolute-form target', 'GET http://h/v2'],
    ['another method', 'POST /v2/a/manifests/b HTTP/1.1\r\n\r\n'],
    ['a lowercase method', 'get /v2/a/manifests/b HTTP/1.1\r\n\r\n'],
    ['HTTP/1.0', 'GET /v2/a/manifests/b HTTP/1.0\r\n\r\n'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['an absolute-form target', 'GET http://h/v2/a/manifests/b HTTP/1.1\r\n\r\n'],
    ['an asterisk target', 'GET * HTTP/1.1\r\n\r\n'],
    ['two spaces in the request line', 'GET  /v2/a HTTP/1.1\r\n\r\n'],
    ['a control byte in the target', 'GET /v2/a\x01 HTTP/1.1\r\n\r\n'],
    ['a leading blank line', '\r\nGET /v2/a HTTP/1.1\r\n\r\n'],
    ['a bare LF line end', 'GET /v2/a HTTP/1.1\nHost: h\r\n\r\n'],
    ['a bare CR in a value', 'GET /v2/a HTTP/1.1\r\nX: a\rb\r\n\r\n'],
    ['a NUL in a value', 'GET /v2/a HTTP/1.1\r\nX: a\x00b\r\n\r\n'],
    ['an obs-fold continuation line', 'GET /v2/a HTTP/1.1\r\nX: a\r\n b\r\n\r\n'],
    ['a space before the colon', 'GET /v2/a HTTP/1.1\r\nHost : h\r\n\r\n'],
    ['a header without a colon', 'GET /v2/a HTTP/1.1\r\nHost\r\n\r\n'],
    ['an empty header name', 'GET /v2/a HTTP/1.1\r\n: h\r\n\r\n'],
    ['a body (Content-Length)', 'GET /v2/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n'],
    ['a body (Transfer-Encoding)', 'GET /v2/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['Connection: close', 'GET /v2/a HTTP/1.1\r\nConnection: close\r\n\r\n'],
    ['Connection: keep-alive', 'GET /v2/a HTTP/1.1\r\nconnection: keep-alive\r\n\r\n'],
    ['an upgrade', 'GET /v2/a HTTP/1.1\r\nUpgrade: websocket\r\n\r\n'],
    ['an expectation', 'GET /v2/a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n'],
    ['two Host headers', 'GET /v2/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['two Authorization headers', 'GET /v2/a HTTP/1.1\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n\r\n'],
    ['two X-Request-Id headers', 'GET /v2/a HTTP/1.1\r\nX-Request-Id: a\r\nX-Request-Id: b\r\n\r\n'],
    ['two User-Agent headers', 'GET /v2/a HTTP/1.1\r\nUser-Agent: a\r\nUser-Agent: b\r\n\r\n'],
  ])('leaves %s to Node', (_what, text) => {
    expect(read(text)).toBe(NOT_SIMPLE);
  });
});
