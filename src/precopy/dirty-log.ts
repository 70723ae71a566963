import { argCheck, intArg } from '../io/args.ts';
import { NextMember, popcount32 } from '../memory/skip-list.ts';

/**
 * The hypervisor's dirty log (KVM's dirty bitmap, Xen's log-dirty shadow bitmap): pages the guest
 * wrote since the last sync, one bit per page, plus the list of words with a bit set, so marking
 * a run and syncing cost a word per 32 pages rather than a step per page. A page written also
 * stops being a zero page and becomes stale at the destination (until it is sent again).
 */
export class DirtyLog {
  private readonly words: Uint32Array;
  private readonly dirtyWords: Int32Array;
  private nWords = 0;
  /** Pages marked since the last sync. */
  count = 0;
  /** Guest writes seen (a page written twice between syncs counts twice). */
  writes = 0;

  constructor(
    pages: number,
    private readonly zero: NextMember | null,
    /** One bit per page: written since the destination last received it. */
    private readonly stale: Uint32Array,
  ) {
    intArg('DirtyLog.pages', pages, 1, 2 ** 30);
    argCheck(zero === null || zero instanceof NextMember, 'DirtyLog.zero', 'must be a NextMember of the zero pages, or null');
    argCheck(stale instanceof Uint32Array && stale.length >= (pages + 31) >>> 5, 'DirtyLog.stale', 'must be a Uint32Array with a bit per page');
    this.words = new Uint32Array((pages + 31) >>> 5);
    this.dirtyWords = new Int32Array(this.words.length);
  }

  /** The guest wrote page g. */
  mark(g: number): void {
    this.writes++;
    this.markBits(g >>> 5, 1 << (g & 31));
  }

  /** The guest wrote pages lo..hi−1. */
  markRange(lo: number, hi: number): void {
    if (hi <= lo) return;
    this.writes += hi - lo;
    const last = (hi - 1) >>> 5;
    for (let w = lo >>> 5; w <= last; w++) {
      const from = w === lo >>> 5 ? lo & 31 : 0, to = w === last ? ((hi - 1) & 31) + 1 : 32;
      this.markBits(w, to === 32 ? ~0 << from : ((1 << to) - 1) & (~0 << from));
    }
  }

  private markBits(w: number, bits: number): void {
    const fresh = bits & ~this.words[w]!;
    if (fresh === 0) return;
    if (this.words[w] === 0) this.dirtyWords[this.nWords++] = w;
    this.words[w]! |= fresh;
    this.count += popcount32(fresh);
    this.stale[w]! |= fresh;
    this.zero?.removeBits(w, fresh);
  }

  /** Hands each word with dirty pages to `fn` (word index, its bits), then empties the log. */
  drain(fn: (w: number, bits: number) => void): void {
    const { words, dirtyWords } = this;
    for (let i = 0; i < this.nWords; i++) {
      const w = dirtyWords[i]!;
      fn(w, words[w]!);
      words[w] = 0;
    }
    this.nWords = 0;
    this.count = 0;
  }
}
