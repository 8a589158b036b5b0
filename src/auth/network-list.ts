// A set of client networks (CIDRs, IPv4 and IPv6) on node:net's BlockList, which matches in
// native code and treats an IPv4-mapped IPv6 address (::ffff:10.1.2.3, what a dual-stack
// listener reports for an IPv4 client) as the IPv4 address it carries.
import { BlockList, isIP } from 'node:net';

export class CidrSyntaxError extends Error {
  readonly cidr: string;

  constructor(cidr: string, why: string) {
    super(`invalid network ${JSON.stringify(cidr)}: ${why}`);
    this.cidr = cidr;
    this.name = 'CidrSyntaxError';
  }
}

const PREFIX = /^[0-9]{1,3}$/;

export class NetworkList {
  readonly #list: BlockList;

  /** @param cidrs `10.0.0.0/8`, `fd00::/8`, or a bare address meaning that one host */
  constructor(cidrs: readonly string[]) {
    this.#list = new BlockList();
    for (const cidr of cidrs) {
      const slash = cidr.indexOf('/');
      const address = slash === -1 ? cidr : cidr.slice(0, slash);
      const family = isIP(address);
      if (family === 0) throw new CidrSyntaxError(cidr, 'not an IPv4 or IPv6 address');
      const max = family === 4 ? 32 : 128;
      const prefixText = slash === -1 ? String(max) : cidr.slice(slash + 1);
      if (!PREFIX.test(prefixText) || Number(prefixText) > max) {
        throw new CidrSyntaxError(cidr, `prefix length must be 0 to ${max}`);
      }
      this.#list.addSubnet(address, Number(prefixText), family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  contains(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    return this.#list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}
