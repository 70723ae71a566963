import { intArg } from '../io/args.ts';
import { PostcopyEmuError } from '../io/errors.ts';
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
/** The bits of index i's word from i up to `to` (exclusive) or the word's end. */
const spanBits = (i: number, to: number) => {
  const lo = i & 31, n = Math.min(32 - lo, to - i);
  // n is 1..32 (i < to): the top n bits of ~0 shifted down, no branch. With one, the partial
  // word's arm, first taken after a storm's whole words had the function optimised, deoptimised it.
  return (~0 >>> (32 - n)) << lo;
};
/** The first index of the word after index i's: the step of a word-at-a-time range loop. */
const nextWord = (i: number) => (i | 31) + 1;

/** Sets bits from..to−1 of a bitmap of 32-bit words: the partial words at the ends, a fill between. */
function setSpan(words: Int32Array, from: number, to: number): void {
  if (from >= to) return;
  const first = from >>> 5, last = (to - 1) >>> 5;
  if (first === last) {
    words[first]! |= spanBits(from, to);
    return;
  }
  words[first]! |= spanBits(from, (first + 1) << 5);
  // fill() is a call into V8's runtime (C++), even for no words: a record's two or three words
  // have at most one between them, stored here; fill() only for a long range.
  if (last - first > 16) words.fill(-1, first + 1, last);
  else for (let w = first + 1; w < last; w++) words[w] = -1;
  words[last]! |= spanBits(last << 5, to);
}

/**
 * A set of indexes 0..n-1 as a bitmap with a summary bit per 32-bit word: membership, add and
 * remove are O(1); "next (or previous) member from i" skips 32 indexes per word and 1024 per
 * summary word, so scans never walk absent indexes one by one. One bit per page. Used for the source's
 * unsent pages and the pages nobody has asked for yet; members can come back (`add`), as
 * re-sent pages do.
 */
export class NextMember {
  /** Signed words: a full word is −1, which stays a small integer where an unsigned one would not. */
  private readonly words: Int32Array;
  private readonly summary: Int32Array;

  /** Every index 0..size−1 is a member, or none when `full` is false. */
  constructor(readonly size: number, alloc: Alloc = FRESH, full = true) {
    intArg('NextMember.size', size, 0, 2 ** 30);
    const nw = (size + 31) >>> 5;
    this.words = alloc.int32(nw);
    this.summary = alloc.int32((nw + 31) >>> 5);
    if (!full) return;
    this.words.fill(-1);
    if (size & 31) this.words[nw - 1] = (1 << (size & 31)) - 1;
    this.summary.fill(-1);
    if (nw & 31) this.summary[this.summary.length - 1] = (1 << (nw & 31)) - 1;
  }

  /** A copy of `set` (same size) with its arrays from `alloc`. */
  static copyOf(set: NextMember, alloc: Alloc = FRESH): NextMember {
    const copy = new NextMember(set.size, alloc, false);
    copy.words.set(set.words);
    copy.summary.set(set.summary);
    return copy;
  }

  /** The indexes 0..size−1 that `set` (same size) lacks, with its arrays from `alloc`. */
  static complementOf(set: NextMember, alloc: Alloc = FRESH): NextMember {
    const out = new NextMember(set.size, alloc, false), words = out.words, summary = out.summary;
    set.complementInto(words);
    for (let w = 0; w < words.length; w++) if (words[w] !== 0) summary[w >>> 5]! |= 1 << (w & 31);
    return out;
  }

  /**
   * Writes the indexes this set lacks into `out` (zeroed, one word per 32 indexes) as bits, and
   * only the words that have any: a set with every member leaves `out` untouched (no page faults).
   */
  complementInto(out: Int32Array): void {
    const words = this.words, nw = words.length, tail = this.size & 31;
    // A partial last word first, outside the loop: met at the loop's end, its compare had no
    // type feedback when the loop had been optimised on-stack, and deoptimised it.
    const whole = tail === 0 ? nw : nw - 1;
    if (whole < nw) {
      const bits = ~words[whole]! & ((1 << tail) - 1);
      if (bits !== 0) out[whole] = bits;
    }
    for (let w = 0; w < whole; w++) {
      const bits = ~words[w]!;
      if (bits !== 0) out[w] = bits;
    }
  }

  /** Members in the set. */
  count(): number {
    const words = this.words;
    let n = 0;
    for (let w = 0; w < words.length; w++) {
      const x = words[w]!;
      if (x === -1) n += 32;
      else if (x !== 0) n += popcount32(x);
    }
    return n;
  }

  /** Adds from..to−1: whole words at once, and the summary bits of every word it touches. */
  addRange(from: number, to: number): void {
    if (!(from >= 0 && to <= this.size)) this.outside('addRange', from, to);
    if (from >= to) return;
    setSpan(this.words, from, to);
    setSpan(this.summary, from >>> 5, ((to - 1) >>> 5) + 1);
  }

  /** Removes from..to−1, a word at a time. */
  removeRange(from: number, to: number): void {
    if (!(from >= 0 && to <= this.size)) this.outside('removeRange', from, to);
    for (let i = from; i < to; i = nextWord(i)) this.removeBits(i >>> 5, spanBits(i, to));
  }

  has(i: number): boolean {
    return i >= 0 && i < this.size && ((this.words[i >>> 5]! >>> (i & 31)) & 1) === 1;
  }

  remove(i: number): void {
    if (!(i >= 0 && i < this.size) || (i | 0) !== i) intArg('NextMember.remove.i', i, 0, this.size - 1);
    const words = this.words, summary = this.summary, w = i >>> 5;
    const left = words[w]! & ~(1 << (i & 31));
    words[w] = left;
    // Without a branch: the summary path has run before the optimiser compiles this.
    summary[w >>> 5]! &= ~((left === 0 ? 1 : 0) << (w & 31));
  }

  add(i: number): void {
    if (!(i >= 0 && i < this.size) || (i | 0) !== i) intArg('NextMember.add.i', i, 0, this.size - 1);
    const w = i >>> 5;
    this.words[w]! |= 1 << (i & 31);
    this.summary[w >>> 5]! |= 1 << (w & 31);
  }

  /** A range a mutator was given that is not inside 0..size (the checks above cost two compares a call). */
  private outside(method: string, from: number, to: number): never {
    throw new PostcopyEmuError(`NextMember.${method}`, `NextMember.${method}: ${from}..${to} must lie within 0..${this.size}`);
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

  /** Adds the members set in `bits`, a bitmap of this set's indexes (32 a word). */
  addAll(bits: Int32Array): void {
    for (let w = 0; w < bits.length; w++) if (bits[w] !== 0) this.addBits(w, bits[w]!);
  }

  /** Removes the members whose bits are set in `bits` of word w. */
  removeBits(w: number, bits: number): void {
    const left = this.words[w]! & ~bits;
    this.words[w] = left;
    // Without a branch, as remove(): a word first emptied after the optimiser compiled a caller
    // deoptimised takeRequested and removeRange in a storm's first run.
    this.summary[w >>> 5]! &= ~((left === 0 ? 1 : 0) << (w & 31));
  }

  /** The first member at or after i, or `size` when none is left. */
  next(i: number): number {
    // Fields are read up front so the rarely taken paths have their feedback when optimised.
    const size = this.size, words = this.words, summary = this.summary;
    if (i >= size) return size;
    if (i < 0) i = 0;
    let w = i >>> 5;
    const here = words[w]! & (-1 << (i & 31));
    if (here !== 0) return (w << 5) + ctz(here);
    w++;
    // The summary words from w's on, the first masked below w; the loop's body runs on the common
    // path too (a skip past a whole empty summary word came first after the optimiser had compiled
    // next and its callers, and deoptimised them for want of the loop's type feedback).
    let sw = (w >>> 5) - 1, bits = 0, mask = -1 << (w & 31);
    do {
      if (++sw >= summary.length) return size;
      bits = summary[sw]! & mask;
      mask = -1;
    } while (bits === 0);
    w = (sw << 5) + ctz(bits);
    return (w << 5) + ctz(words[w]!);
  }

  /** Members in from..to−1, a word at a time. */
  countIn(from: number, to: number): number {
    const words = this.words;
    let n = 0;
    for (let i = from; i < to; i = nextWord(i)) {
      const bits = words[i >>> 5]! & spanBits(i, to);
      if (bits !== 0) n += popcount32(bits);
    }
    return n;
  }

  /** The first member in from..to−1, or `to` when none is: next() bounded, for short ranges. */
  firstIn(from: number, to: number): number {
    const words = this.words;
    for (let i = from; i < to; i = nextWord(i)) {
      const here = words[i >>> 5]! & (-1 << (i & 31));
      if (here !== 0) return Math.min(to, (i & ~31) + ctz(here));
    }
    return to;
  }

  /** The first index at or after i that is not a member, or `to` (at most `size`) when none is before it. */
  nextGap(i: number, to = this.size): number {
    const words = this.words;
    if (to > this.size) to = this.size;
    if (i >= to) return to;
    let w = i >>> 5;
    const last = (to - 1) >>> 5;
    let gaps = ~words[w]! & (~0 << (i & 31));
    while (gaps === 0) {
      if (++w > last) return to;
      gaps = ~words[w]!;
    }
    return Math.min(to, (w << 5) + ctz(gaps));
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
