import type { NextMember } from '../memory/skip-list.ts';
import type { PfnSlab } from '../stream/slab.ts';

/**
 * Where the source's background push goes next. Per record the source takes requested pfns
 * first (telling the policy about each), asks the policy how many background pages the record
 * may carry, then asks for them one at a time, and reports how many it got. Every pfn the policy
 * returns must still be in `unsent`; the source removes it.
 */
export interface PushPolicy {
  readonly name: string;
  /** A requested pfn was put into the record being built. */
  requested(gfn: number): void;
  /** The next unsent pfn to push in the background, or -1 for none. */
  nextBackground(): number;
  /** The source read a FAULT record from the back-channel; `last` is the last page it asks for. */
  faulted(last: number): void;
  /** Background pages the record being built may carry; `room` is what is left of recordPages. */
  backgroundBudget(room: number): number;
  /** The record was written with `count` background pages. */
  backgroundSent(count: number): void;
  /** Requests are read and dropped: pages travel only when the background scan reaches them. */
  readonly ignoresRequests?: boolean;
  /** The destination asked for the next background chunk (CRIU's lazy-pages daemon). */
  pulled?(): void;
  /**
   * Up to `max` background pages at once, in nextBackground's order, pushed to `slab` and
   * removed from the unsent set; returns how many. A storm pushes every page of the guest.
   */
  takeBackground?(slab: PfnSlab, max: number): number;
}

/**
 * Xen's RFC source: a linear scan of unsent pfns that continues from the last faulted pfn + 1
 * (locality), wrapping once it reaches the end of memory.
 */
export class XenPush implements PushPolicy {
  protected cursor = 0;

  /**
   * `lastFaulted`: the scan goes on after the last pfn of each FAULT record read, sent or not
   * (the RFC's `handle_postcopy_faults` sets `last_fault_pfn`); otherwise after each requested
   * page it takes (QEMU's `get_queued_page` moves the PSS only to a page it sends).
   */
  constructor(protected readonly unsent: NextMember, readonly name: string = 'xen', private readonly lastFaulted = false) {}

  requested(gfn: number): void {
    if (!this.lastFaulted) this.cursor = gfn + 1;
  }

  faulted(last: number): void {
    if (this.lastFaulted && last >= 0) this.cursor = last + 1;
  }

  nextBackground(): number {
    const g = this.scan(this.cursor);
    if (g >= this.unsent.size) return -1;
    this.cursor = g + 1;
    return g;
  }

  /**
   * The first unsent pfn from `from` on, wrapping once to pfn 0; unsent.size or more when none.
   * One call site for both searches: the wrap's own call, reached only when the scan passes the
   * end of memory, had no type feedback when takeBackground was optimised and deoptimised it twice
   * in a storm's first run (a recompile each).
   */
  protected scan(from: number): number {
    const unsent = this.unsent, n = unsent.size;
    for (let f = from < n ? from : n; ; f = 0) {
      // Both compares every time: one first met at the wrap would deoptimise the same way.
      const g = unsent.next(f), last = f === 0;
      if (g < n || last) return g;
    }
  }

  takeBackground(slab: PfnSlab, max: number): number {
    // A record full of requested pages takes nothing: not even the search for the scan's next page,
    // which a range over all memory (the scan then at its start, before every page sent) makes long.
    if (max === 0) return 0;
    const unsent = this.unsent, n = unsent.size;
    let taken = 0;
    let g = this.scan(this.cursor);
    while (taken < max && g < n) {
      // The members of g's word from g on, lowest first, then one removal for all of them.
      const w = g >>> 5;
      let bits = unsent.word(w) & (-1 << (g & 31)), took = 0;
      if (bits === -1 && max - taken >= 32) {
        // Whole words of unsent pages (a storm's usual case): 32 consecutive pfns each, as many
        // words in a row as the record holds, without a search between them (and no read past
        // the last word: V8 deoptimises a typed array's first read out of bounds).
        let words = 1;
        while (max - taken - 32 * words >= 32 && (w + words + 1) << 5 <= n && unsent.word(w + words) === -1) {
          unsent.removeBits(w + words, -1);
          words++;
        }
        slab.pushRun(w << 5, 32 * words);
        taken += 32 * words;
        took = -1;
        bits = 0;
        g = ((w + words) << 5) - 1;
      }
      // Then each run of consecutive members in the word at once (requests leave holes in it).
      while (bits !== 0 && taken < max) {
        const at = 31 - Math.clz32(bits & -bits), gaps = ~(bits >>> at);
        const len = Math.min(gaps === 0 ? 32 : 31 - Math.clz32(gaps & -gaps), max - taken);
        const run = len === 32 ? -1 : ((1 << len) - 1) << at;
        took |= run;
        bits &= ~run;
        g = (w << 5) + at + len - 1;
        slab.pushRun((w << 5) + at, len);
        taken += len;
      }
      unsent.removeBits(w, took);
      this.cursor = g + 1;
      if (taken < max) g = this.scan(this.cursor);
    }
    return taken;
  }

  backgroundBudget(room: number): number {
    return room;
  }

  backgroundSent(_count: number): void {}
}

/** Pure demand paging: nothing is pushed; only requested pages travel. */
export class DemandOnly implements PushPolicy {
  readonly name = 'demand';
  requested(): void {}
  nextBackground(): number {
    return -1;
  }
  faulted(): void {}
  backgroundBudget(): number {
    return 0;
  }
  backgroundSent(): void {}
}

/**
 * Background transfer that ignores faults (the pre-paging papers' baseline): a linear scan from
 * page 0; a requested page travels only when the scan reaches it.
 */
export class PushOnly extends XenPush {
  readonly ignoresRequests = true;

  constructor(unsent: NextMember) {
    super(unsent, 'push-only');
  }
}
