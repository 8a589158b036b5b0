// Where credentials may go (CredentialPolicy) and which addresses redirects and realms may lead
// to (DialPolicy): pure decisions, checked here without dialling anything.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { CredentialPolicy } from '../../src/proxy/credential-policy.ts';
import { addressKind, DialPolicy, RefusedAddressError } from '../../src/proxy/dial-policy.ts';

const u = (s: string) => new URL(s);

describe('CredentialPolicy', () => {
  const hub = new CredentialPolicy('https://registry-1.docker.io', []);

  it('lets the credentials go to realms on the upstream\'s side, for challenges from its side', () => {
    expect(hub.mayUseCredentials(u('https://registry-1.docker.io/v2/x'), u('https://auth.docker.io/token'))).toBe(true);
    const gitlab = new CredentialPolicy('https://registry.gitlab.com', []);
    expect(gitlab.mayUseCredentials(u('https://registry.gitlab.com/v2/x'), u('https://gitlab.com/jwt/auth'))).toBe(true);
    const local = new CredentialPolicy('http://10.0.0.5:5000', []);
    expect(local.mayUseCredentials(u('http://10.0.0.5:5000/v2/x'), u('http://10.0.0.5:5001/auth'))).toBe(true);
  });

  it('keeps them from realms a CDN or another domain names', () => {
    expect(hub.mayUseCredentials(u('https://production.cloudflare.docker.com/x'), u('https://auth.docker.io/token'))).toBe(false);
    expect(hub.mayUseCredentials(u('https://registry-1.docker.io/v2/x'), u('https://evil.example/token'))).toBe(false);
    // Tenants of one hosting suffix are not one domain (the PSL's private section counts).
    const heroku = new CredentialPolicy('https://mine.herokuapp.com', []);
    expect(heroku.mayUseCredentials(u('https://mine.herokuapp.com/v2/x'), u('https://evil.herokuapp.com/token'))).toBe(false);
    // IP literals have no registrable domain.
    const ip = new CredentialPolicy('http://127.0.0.1:5000', []);
    expect(ip.mayUseCredentials(u('http://127.0.0.1:5000/v2/x'), u('http://localhost:5001/token'))).toBe(false);
  });

  it('refuses http realms for an https upstream, and takes listed realm hosts', () => {
    expect(hub.realmUsable(u('http://auth.docker.io/token'))).toBe(false);
    expect(hub.mayUseCredentials(u('https://registry-1.docker.io/v2/x'), u('http://auth.docker.io/token'))).toBe(false);
    const listed = new CredentialPolicy('https://registry.example.com', ['sso.corp.example']);
    expect(listed.mayUseCredentials(u('https://registry.example.com/v2/x'), u('https://sso.corp.example/token'))).toBe(true);
  });

  it('sends Basic credentials to the upstream\'s own origin only', () => {
    expect(hub.isOwnOrigin(u('https://registry-1.docker.io/v2/'))).toBe(true);
    expect(hub.isOwnOrigin(u('https://registry-1.docker.io:444/v2/'))).toBe(false);
    expect(hub.isOwnOrigin(u('http://registry-1.docker.io/v2/'))).toBe(false);
  });
});

describe('DialPolicy', () => {
  it('knows the special networks, IPv4-mapped IPv6 included', () => {
    expect(addressKind('8.8.8.8')).toBe('public');
    expect(addressKind('127.0.0.1')).toBe('loopback');
    expect(addressKind('::1')).toBe('loopback');
    expect(addressKind('169.254.169.254')).toBe('link-local');
    expect(addressKind('::ffff:169.254.169.254')).toBe('link-local');
    expect(addressKind('fe80::1')).toBe('link-local');
    expect(addressKind('10.1.2.3')).toBe('private');
    expect(addressKind('172.31.0.1')).toBe('private');
    expect(addressKind('192.168.1.1')).toBe('private');
    expect(addressKind('fd00::1')).toBe('private');
    expect(addressKind('0.0.0.0')).toBe('special');
    expect(addressKind('::')).toBe('special');
    expect(addressKind('2606:4700::1')).toBe('public');
  });

  it('lets a public upstream lead to public hosts only, unless a host is listed', () => {
    const policy = new DialPolicy('registry-1.docker.io', ['cache.internal']);
    expect(() => policy.check('cdn.example', '104.16.1.1')).not.toThrow();
    for (const address of ['169.254.169.254', '127.0.0.1', '10.0.0.9', '::1', '0.0.0.0', 'fd12::1']) {
      expect(() => policy.check('cdn.example', address), address).toThrow(RefusedAddressError);
    }
    expect(() => policy.check('cache.internal', '10.0.0.9')).not.toThrow();
    expect(() => new DialPolicy('8.8.8.8', []).checkLiteral(u('http://169.254.169.254/latest/meta-data'))).toThrow(RefusedAddressError);
  });

  it('lets an upstream on a private or loopback network lead to that kind of network, never to metadata', () => {
    const loopback = new DialPolicy('127.0.0.1', []);
    expect(() => loopback.check('localhost', '127.0.0.1')).not.toThrow();
    expect(() => loopback.check('metadata', '169.254.169.254')).toThrow(RefusedAddressError);
    expect(() => loopback.checkLiteral(u('http://0.0.0.0:8080/'))).toThrow(RefusedAddressError);
    const privateByName = new DialPolicy('registry.corp', []);
    privateByName.check('registry.corp', '10.0.0.5'); // learnt when its own name resolved
    expect(() => privateByName.check('blobs.corp', '10.0.0.6')).not.toThrow();
    expect(() => privateByName.check('x', '169.254.169.254')).toThrow(RefusedAddressError);
  });

  it('refuses through lookup() a name that resolves to a refused address', async () => {
    const policy = new DialPolicy('registry.example', []);
    const result = await new Promise<unknown>((resolve) => policy.lookup('localhost', { all: true }, (err) => resolve(err)));
    expect(result).toBeInstanceOf(RefusedAddressError);
  });

  it('is what undici\'s connector resolves names with: a refused name is never connected to', async () => {
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const policy = new DialPolicy('registry.example', []);
    const agent = new Agent({ connect: { lookup: policy.lookup } });
    try {
      const err = await request(`http://localhost:${port}/`, { dispatcher: agent }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const refused = err instanceof RefusedAddressError ? err : (err as { cause?: unknown } | undefined)?.cause;
      expect(refused).toBeInstanceOf(RefusedAddressError);
      expect(connections).toBe(0);
    } finally {
      await agent.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
