import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HmacSha256 } from '../../src/auth/hmac-sha256.ts';

describe('HmacSha256', () => {
  it('equals node:crypto createHmac for keys and messages of many lengths', () => {
    for (const keyLength of [0, 1, 32, 63, 64]) {
      const key = randomBytes(keyLength);
      const mac = new HmacSha256(key);
      for (const messageLength of [0, 1, 55, 56, 64, 65, 200, 4096]) {
        const message = randomBytes(messageLength);
        expect(mac.digest(message)).toBe(createHmac('sha256', key).update(message).digest('base64'));
      }
    }
  });

  it('matches the RFC 4231 test case 2', () => {
    const mac = new HmacSha256(Buffer.from('Jefe'));
    expect(Buffer.from(mac.digest(Buffer.from('what do ya want for nothing?')), 'base64').toString('hex')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('refuses keys longer than a block', () => {
    expect(() => new HmacSha256(randomBytes(65))).toThrow(RangeError);
  });
});
