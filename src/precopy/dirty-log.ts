import type { NextMember } from '../memory/skip-list.ts';

/**
 * The hypervisor's dirty log (KVM's dirty bitmap, Xen's log-dirty shadow bitmap): pages the guest
 * wrote since the last sync. A byte per page plus the list of pages marked, so a sync costs the
 * pages dirtied rather than a walk of guest memory. Marking a page also makes its source content
 * newer and, for a zero page, no longer zero.
 */
export class DirtyLog {
  private readonly bits: Uint8Array;
  /** Pages marked since the last sync, in marking order (the first `count`). */
  readonly marked: Int32Array;
  count = 0;
  /** Guest writes seen (a page written twice between syncs counts twice). */
  writes = 0;

  constructor(
    pages: number,
    /** Content version of each page at the source. */
    private readonly version: Uint32Array,
    private readonly zero: NextMember | null,
  ) {
    this.bits = new Uint8Array(pages);
    this.marked = new Int32Array(pages);
  }

  /** The guest wrote page g. */
  mark(g: number): void {
    this.writes++;
    if (this.bits[g] === 1) return;
    this.bits[g] = 1;
    this.marked[this.count++] = g;
    // Writes are applied at sync time: one newer version per sync period is enough to tell stale copies.
    this.version[g]!++;
    this.zero?.remove(g);
  }

  /** The guest wrote pages lo..hi−1. */
  markRange(lo: number, hi: number): void {
    const bits = this.bits;
    this.writes += hi - lo;
    for (let g = lo; g < hi; g++) {
      if (bits[g] === 1) continue;
      bits[g] = 1;
      this.marked[this.count++] = g;
      this.version[g]!++;
      this.zero?.remove(g);
    }
  }

  /** Empties the log (after its pages were taken). */
  clear(): void {
    const { bits, marked } = this;
    for (let i = 0; i < this.count; i++) bits[marked[i]!] = 0;
    this.count = 0;
  }
}
