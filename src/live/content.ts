import { endianness } from 'node:os';
import { intArg } from '../io/args.ts';

/**
 * Live mode's page bytes: the source fills each page from (seed, gfn, version), and the
 * destination checks what arrived against the same function, so no page table of hashes has to
 * cross the wire. Content is defined as little-endian 32-bit words; the Uint32Array fast paths
 * are used only where they produce exactly those bytes (a little-endian host, a 4-byte aligned
 * view), and a byte-at-a-time path gives the same bytes everywhere else.
 */

/** The version of every page a live run migrates: the guest does not run at the source, so none is rewritten there. */
export const MIGRATED_VERSION = 0;

const LITTLE_ENDIAN = endianness() === 'LE';
const U32_MAX = 0xffffffff;

/** MurmurHash3's finaliser: a bijection on u32, so distinct inputs stay distinct. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Fills `out` with the page's content: Marsaglia's xorshift128, each step giving two words, its
 * new state word `a` and `a + t` (t its shifted oldest word), which doubles the speed for little
 * loss of quality. Each state word comes from one input through a bijection, so distinct
 * (seed, gfn, version) start from distinct states; xorshift128 permutes its state and its first
 * four outputs `a` are the state, so distinct inputs give distinct pages (of 32 bytes or more).
 * Eight discarded steps spread every input over every word.
 */
export function fillPage(seed: number, gfn: number, version: number, out: Uint8Array): void {
  intArg('fillPage.seed', seed, 0);
  intArg('fillPage.gfn', gfn, 0, U32_MAX);
  intArg('fillPage.version', version, 0, U32_MAX);
  let x = fmix32((seed >>> 0) ^ 0x9e3779b9);
  let y = fmix32(Math.floor(seed / 0x100000000) ^ 0x7f4a7c15);
  let z = fmix32(gfn ^ 0x94d049bb);
  let w = fmix32(version ^ 0x2545f491);
  if ((x | y | z | w) === 0) w = 1; // xorshift's one forbidden state
  for (let i = 0; i < 8; i++) {
    const t = x ^ (x << 11);
    x = y; y = z; z = w;
    w = w ^ (w >>> 19) ^ t ^ (t >>> 8);
  }

  const n = out.length;
  let o = 0;
  if (LITTLE_ENDIAN && (out.byteOffset & 3) === 0) {
    // 32 bytes (four steps) a turn, each new word written over the oldest: no register shuffling.
    const words = (n >>> 5) << 3;
    const v = new Uint32Array(out.buffer, out.byteOffset, words);
    for (let i = 0; i < words; i += 8) {
      let t = x ^ (x << 11);
      x = w ^ (w >>> 19) ^ t ^ (t >>> 8);
      v[i] = x;
      v[i + 1] = (x + t) | 0;
      t = y ^ (y << 11);
      y = x ^ (x >>> 19) ^ t ^ (t >>> 8);
      v[i + 2] = y;
      v[i + 3] = (y + t) | 0;
      t = z ^ (z << 11);
      z = y ^ (y >>> 19) ^ t ^ (t >>> 8);
      v[i + 4] = z;
      v[i + 5] = (z + t) | 0;
      t = w ^ (w << 11);
      w = z ^ (z >>> 19) ^ t ^ (t >>> 8);
      v[i + 6] = w;
      v[i + 7] = (w + t) | 0;
    }
    o = words << 2;
  }
  // The rest (all of it for an unaligned view): the same steps, written a byte at a time.
  while (o < n) {
    const t = x ^ (x << 11);
    const a = w ^ (w >>> 19) ^ t ^ (t >>> 8);
    x = y; y = z; z = w; w = a;
    o = putWord(out, o, a);
    if (o < n) o = putWord(out, o, (a + t) | 0);
  }
}

/** Writes the word little-endian at o, clipped to the end of out; returns the next offset. */
function putWord(out: Uint8Array, o: number, v: number): number {
  if (o + 4 <= out.length) {
    out[o] = v;
    out[o + 1] = v >>> 8;
    out[o + 2] = v >>> 16;
    out[o + 3] = v >>> 24;
    return o + 4;
  }
  for (let k = 0; o < out.length; o++, k += 8) out[o] = v >>> k;
  return o;
}

/** Grown on demand and reused: holdsContent runs once per page checked. */
let scratch = Buffer.alloc(4096);

/**
 * Whether `page` holds exactly the bytes of (seed, gfn, version): the page is filled again here
 * and compared byte for byte (memcmp), cheaper than hashing both and stricter than any hash.
 */
export function holdsContent(seed: number, gfn: number, version: number, page: Uint8Array): boolean {
  if (scratch.length < page.length) scratch = Buffer.alloc(page.length);
  const want = scratch.subarray(0, page.length);
  fillPage(seed, gfn, version, want);
  return want.equals(page);
}
