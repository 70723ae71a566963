import { FRESH, type Alloc } from './arena.ts';

/** Index of the lowest set bit of a non-zero 32-bit word. */
const ctz = (x: number) => 31 - Math.clz32(x & -x);
/** Set bits of a 32-bit word. */
export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Index of the highest set bit of a non-zero 32-bit word. */
const msb = (x: number) => 31 - Math.clz32(x);
/** Bits 0..b of a word. */
const upTo = (b: number) => (b === 31 ? ~0 : (1 << (b + 1)) - 1);

/**
 * A set of indexes 0..n-1 as a bitmap with a summary bit per 32-bit word: membership, add and
 * remove are O(1); "next (or previous) member from i" skips 32 indexes per word and 1024 per
 * summary word, so scans never walk absent indexes one by one. One bit per page. Used for the source's
 * unsent pages and the pages nobody has asked for yet; members can come back (`add`), as
 * re-sent pages do.
 */
export class NextMember {
  private readonly words: Uint32Array;
  private readonly summary: Uint32Array;

  constructor(readonly size: number, alloc: Alloc = FRESH) {
    const nw = (size + 31) >>> 5;
    this.words = alloc.uint32(nw).fill(0xffffffff);
    if (size & 31) this.words[nw - 1] = (1 << (size & 31)) - 1;
    this.summary = alloc.uint32((nw + 31) >>> 5);
    for (let w = 0; w < nw; w++) this.summary[w >>> 5]! |= 1 << (w & 31);
  }

  has(i: number): boolean {
    return i >= 0 && i < this.size && ((this.words[i >>> 5]! >>> (i & 31)) & 1) === 1;
  }

  remove(i: number): void {
    const w = i >>> 5;
    const left = (this.words[w]! & ~(1 << (i & 31))) >>> 0;
    this.words[w] = left;
    if (left === 0) this.summary[w >>> 5]! &= ~(1 << (w & 31));
  }

  add(i: number): void {
    const w = i >>> 5;
    this.words[w]! |= 1 << (i & 31);
    this.summary[w >>> 5]! |= 1 << (w & 31);
  }

  /** Members 32w..32w+31 as the bits of a word: word-at-a-time set operations. */
  word(w: number): number {
    return this.words[w]!;
  }

  /** Adds the members whose bits are set in `bits` of word w. */
  addBits(w: number, bits: number): void {
    this.words[w]! |= bits;
    if (bits !== 0) this.summary[w >>> 5]! |= 1 << (w & 31);
  }

  /** Removes the members whose bits are set in `bits` of word w. */
  removeBits(w: number, bits: number): void {
    const left = (this.words[w]! & ~bits) >>> 0;
    this.words[w] = left;
    if (left === 0) this.summary[w >>> 5]! &= ~(1 << (w & 31));
  }

  /** The first member at or after i, or `size` when none is left. */
  next(i: number): number {
    if (i >= this.size) return this.size;
    if (i < 0) i = 0;
    const words = this.words, summary = this.summary;
    let w = i >>> 5;
    const here = words[w]! & (~0 << (i & 31));
    if (here !== 0) return (w << 5) + ctz(here);
    w++;
    let sw = w >>> 5;
    let bits = sw < summary.length ? summary[sw]! & (~0 << (w & 31)) : 0;
    while (bits === 0) {
      if (++sw >= summary.length) return this.size;
      bits = summary[sw]!;
    }
    w = (sw << 5) + ctz(bits);
    return (w << 5) + ctz(words[w]!);
  }

  /** The last member at or before i, or −1 when none is left. */
  prev(i: number): number {
    if (i < 0) return -1;
    if (i >= this.size) i = this.size - 1;
    const words = this.words, summary = this.summary;
    let w = i >>> 5;
    const here = words[w]! & upTo(i & 31);
    if (here !== 0) return (w << 5) + msb(here);
    if (--w < 0) return -1;
    let sw = w >>> 5;
    let bits = summary[sw]! & upTo(w & 31);
    while (bits === 0) {
      if (--sw < 0) return -1;
      bits = summary[sw]!;
    }
    w = (sw << 5) + msb(bits);
    return (w << 5) + msb(words[w]!);
  }
}
