// Which addresses an upstream's traffic may reach besides the upstream itself. A redirect or a
// token realm names a host the network chose: it may not lead wharf onto loopback, link-local
// (cloud metadata), private or otherwise special addresses, unless the upstream itself lives on
// that kind of network or the operator listed the host. Checked on the resolved address (a DNS
// name that resolves to 169.254.169.254 is refused as the literal is), before connecting.
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';

export type AddressKind = 'public' | 'loopback' | 'private' | 'link-local' | 'special';

function blockList(ranges: ReadonlyArray<readonly [string, number, 'ipv4' | 'ipv6']>): BlockList {
  const list = new BlockList();
  for (const [net, prefix, family] of ranges) list.addSubnet(net, prefix, family);
  return list;
}

const KINDS: ReadonlyArray<readonly [Exclude<AddressKind, 'public'>, BlockList]> = [
  ['loopback', blockList([['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']])],
  ['link-local', blockList([['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']])],
  ['private', blockList([['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['100.64.0.0', 10, 'ipv4'], ['fc00::', 7, 'ipv6']])],
  [
    'special',
    blockList([
      ['0.0.0.0', 8, 'ipv4'], // "this network": 0.0.0.0 reaches the local host on Linux
      ['192.0.0.0', 24, 'ipv4'],
      ['198.18.0.0', 15, 'ipv4'],
      ['224.0.0.0', 4, 'ipv4'],
      ['240.0.0.0', 4, 'ipv4'],
      ['::', 128, 'ipv6'],
      ['ff00::', 8, 'ipv6'],
      ['64:ff9b::', 96, 'ipv6'],
      ['2002::', 16, 'ipv6'],
    ]),
  ],
];

/** The kind of network an IP address is on; IPv4-mapped IPv6 counts as its IPv4 address. */
export function addressKind(address: string): AddressKind {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? mapped[1]! : address;
  const family = isIP(ip) === 4 ? 'ipv4' : 'ipv6';
  for (const [kind, list] of KINDS) if (list.check(ip, family)) return kind;
  return 'public';
}

export class RefusedAddressError extends Error {
  readonly code = 'ERR_WHARF_REFUSED_ADDRESS';
  constructor(host: string, address: string, kind: AddressKind) {
    super(`${host} resolves to ${address}, a ${kind} address this upstream may not lead to (list it in redirectHosts to allow it)`);
  }
}

export class DialPolicy {
  readonly #ownHost: string;
  readonly #listed: ReadonlySet<string>;
  /** The kinds of network the upstream's own host was found on: redirects may go there too. */
  readonly #ownKinds = new Set<AddressKind>(['public']);

  /** ownHost: the upstream URL's hostname; listed: hosts the operator allowed (redirectHosts). */
  constructor(ownHost: string, listed: readonly string[]) {
    this.#ownHost = bareHost(ownHost);
    this.#listed = new Set(listed.map((h) => bareHost(h.replace(/:\d+$/, ''))));
    if (isIP(this.#ownHost)) this.#ownKinds.add(addressKind(this.#ownHost));
  }

  /** Throws RefusedAddressError when host (resolved to address) may not be dialled. */
  check(host: string, address: string): void {
    const name = bareHost(host);
    const kind = addressKind(address);
    if (name === this.#ownHost) {
      this.#ownKinds.add(kind);
      return;
    }
    if (this.#listed.has(name) || this.#ownKinds.has(kind)) return;
    throw new RefusedAddressError(host, address, kind);
  }

  /** For URLs with an IP literal host, which connect() never looks up. */
  checkLiteral(url: URL): void {
    const host = bareHost(url.hostname);
    if (isIP(host)) this.check(host, host);
  }

  /** A dns.lookup for undici's connector that applies check() to every address it returns. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      try {
        for (const a of addresses) this.check(hostname, a.address);
      } catch (refused) {
        return callback(refused as NodeJS.ErrnoException, '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  };
}

/** URL hostnames keep IPv6 brackets; addresses do not. */
export function bareHost(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}
