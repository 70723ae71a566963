import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { fillPage } from '../src/live/content.ts';
import { crc32Combine, crc32Shift } from '../src/live/crc32-combine.ts';

describe('crc32Combine', () => {
  it('gives the CRC-32 of a concatenation from its parts\' (hand-checked: "123456789" is 0xcbf43926)', () => {
    expect(crc32Combine(crc32Shift(4), crc32('12345'), crc32('6789'))).toBe(0xcbf43926);
    // Nothing appended: the CRC as it was.
    expect(crc32Combine(crc32Shift(0), 0xcbf43926, crc32(''))).toBe(0xcbf43926);
  });

  it('equals node:zlib\'s crc32 of A‖B for random bytes and lengths', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 5000 }), (a, b) => {
      const whole = crc32(Buffer.concat([a, b]));
      expect(crc32Combine(crc32Shift(b.length), crc32(a), crc32(b))).toBe(whole);
    }), { numRuns: 200, seed: 14 });
  });

  it('appends page after page: a frame of n pages from the pages\' CRCs', () => {
    const pages = Array.from({ length: 5 }, (_, g) => {
      const p = Buffer.alloc(4096);
      fillPage(1, g, 0, p);
      return p;
    });
    const shift = crc32Shift(4096);
    let crc = crc32(Buffer.from('0000000700000000', 'hex'));
    for (const p of pages) crc = crc32Combine(shift, crc, crc32(p));
    expect(crc).toBe(crc32(Buffer.concat([Buffer.from('0000000700000000', 'hex'), ...pages])));
  });
});
