import { describe, expect, it } from 'vitest';
import { crc32 } from 'node:zlib';
import { fillPage, holdsContent } from '../src/live/content.ts';
import { PostcopyEmuError } from '../src/io/errors.ts';
import { thrown } from './throws.ts';

function page(seed: number, gfn: number, version: number, size = 4096): Uint8Array {
  const out = new Uint8Array(size);
  fillPage(seed, gfn, version, out);
  return out;
}

/** A view of `size` bytes starting `offset` bytes into a fresh buffer (offset 1..3: unaligned). */
function viewAt(offset: number, size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(offset + size + 8), offset, size);
}

describe('fillPage', () => {
  it('is deterministic', () => {
    const a = page(7, 123, 2);
    const b = page(7, 123, 2);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    // Overwrites whatever was there.
    const c = new Uint8Array(4096).fill(0xaa);
    fillPage(7, 123, 2, c);
    expect(Buffer.from(c).equals(Buffer.from(a))).toBe(true);
  });

  it('gives every (seed, gfn, version) its own content', () => {
    const seeds = [0, 1, 2, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER];
    const gfns = [0, 1, 2, 1000, 0xffffffff];
    const versions = [0, 1, 2, 0xffffffff];
    const contents = new Set<string>();
    for (const s of seeds) for (const g of gfns) for (const v of versions) {
      const p = page(s, g, v);
      contents.add(Buffer.from(p).toString('base64'));
    }
    const n = seeds.length * gfns.length * versions.length;
    expect(contents.size).toBe(n);
  });

  it('changes every 32-bit word position, not just a few (neighbouring gfns share no words in place)', () => {
    const a = new Uint32Array(page(1, 10, 0).buffer);
    const b = new Uint32Array(page(1, 11, 0).buffer);
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    expect(same).toBe(0);
  });

  it('is not all zeros and uses most byte values', () => {
    const p = page(1, 0, 0);
    expect(new Set(p).size).toBeGreaterThan(250);
  });

  it('writes the same bytes through an unaligned view as through an aligned one, at every length', () => {
    const full = page(3, 77, 5, 4096 + 64);
    for (const size of [...Array.from({ length: 70 }, (_, i) => i), 4095, 4096, 4097, 4099]) {
      const want = Buffer.from(full.subarray(0, size)); // a shorter page is a prefix of a longer one
      for (const offset of [0, 1, 2, 3, 4, 5]) {
        const v = viewAt(offset, size);
        fillPage(3, 77, 5, v);
        expect(Buffer.from(v).equals(want), `size ${size} offset ${offset}`).toBe(true);
      }
    }
  });

  it('leaves the bytes around the view alone', () => {
    const buf = new Uint8Array(4096 + 8).fill(0xee);
    fillPage(1, 2, 3, buf.subarray(3, 3 + 4097));
    expect(buf.subarray(0, 3)).toEqual(new Uint8Array(3).fill(0xee));
    expect(buf.subarray(3 + 4097)).toEqual(new Uint8Array(buf.length - 3 - 4097).fill(0xee));
  });

  it('rejects arguments that would be silently truncated', () => {
    const out = new Uint8Array(16);
    expect(thrown(PostcopyEmuError, () => fillPage(-1, 0, 0, out)).message)
      .toBe('fillPage.seed: must be an integer in 0..9007199254740991, got -1');
    expect(thrown(PostcopyEmuError, () => fillPage(1, 2 ** 32, 0, out)).message)
      .toBe('fillPage.gfn: must be an integer in 0..4294967295, got 4294967296');
    expect(thrown(PostcopyEmuError, () => fillPage(1, 0, 0.5, out)).field).toBe('fillPage.version');
  });
});

describe('holdsContent', () => {
  it('pins the content: CRC-32 of seed 1, gfn 0, version 0, 4 KiB', () => {
    expect(crc32(page(1, 0, 0))).toBe(0x73301a93);
  });

  it('is true for exactly the bytes of (seed, gfn, version), whatever page sizes came before', () => {
    for (const size of [4096, 2 ** 21, 512, 4096, 1000, 0, 65536]) {
      expect(holdsContent(5, 42, 1, page(5, 42, 1, size)), `size ${size}`).toBe(true);
      if (size > 0) expect(holdsContent(5, 43, 1, page(5, 42, 1, size)), `size ${size}`).toBe(false);
    }
    expect(holdsContent(5, 42, 2, page(5, 42, 1))).toBe(false);
    expect(holdsContent(6, 42, 1, page(5, 42, 1))).toBe(false);
  });

  it('sees a single flipped bit anywhere in the page', () => {
    const p = page(9, 9, 9);
    for (const bit of [0, 7, 8, 100, 4096 * 8 - 1]) {
      p[bit >>> 3]! ^= 1 << (bit & 7);
      expect(holdsContent(9, 9, 9, p)).toBe(false);
      p[bit >>> 3]! ^= 1 << (bit & 7);
    }
    expect(holdsContent(9, 9, 9, p)).toBe(true);
  });
});
