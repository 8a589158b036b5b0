import { describe, expect, it } from 'vitest';
import { CidrSyntaxError, NetworkList } from '../../src/auth/network-list.ts';

describe('NetworkList', () => {
  const list = new NetworkList(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '2001:db8::1']);

  it('matches IPv4 CIDRs and single hosts', () => {
    expect(list.contains('10.1.2.3')).toBe(true);
    expect(list.contains('11.1.2.3')).toBe(false);
    expect(list.contains('192.168.1.7')).toBe(true);
    expect(list.contains('192.168.1.8')).toBe(false);
  });

  it('matches an IPv4-mapped IPv6 address (a dual-stack socket) against IPv4 CIDRs', () => {
    expect(list.contains('::ffff:10.1.2.3')).toBe(true);
    expect(list.contains('::FFFF:10.1.2.3')).toBe(true);
    expect(list.contains('::ffff:a01:203')).toBe(true);
    expect(list.contains('::ffff:11.1.2.3')).toBe(false);
    expect(list.contains('::ffff:192.168.1.7')).toBe(true);
  });

  it('matches IPv6 CIDRs and hosts', () => {
    expect(list.contains('fd12:3456::1')).toBe(true);
    expect(list.contains('fe80::1')).toBe(false);
    expect(list.contains('2001:db8::1')).toBe(true);
    expect(list.contains('2001:db8:0:0:0:0:0:1')).toBe(true);
    expect(list.contains('2001:db8::2')).toBe(false);
  });

  it('never matches something that is not an address', () => {
    expect(list.contains('')).toBe(false);
    expect(list.contains('localhost')).toBe(false);
    expect(new NetworkList([]).contains('10.1.2.3')).toBe(false);
  });

  it('0.0.0.0/0 is every IPv4 address but no IPv6 one', () => {
    const all4 = new NetworkList(['0.0.0.0/0']);
    expect(all4.contains('203.0.113.9')).toBe(true);
    expect(all4.contains('2001:db8::1')).toBe(false);
  });

  it.each(['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/8x', '10.0.0/8', 'fd00::/129', 'example.com/8', '', '10.0.0.0/-1'])(
    'refuses %j with a clear error',
    (cidr) => {
      expect(() => new NetworkList([cidr])).toThrow(CidrSyntaxError);
      expect(() => new NetworkList([cidr])).toThrow(JSON.stringify(cidr));
    },
  );
});
