import type { Alloc } from '../memory/arena.ts';
import { PageState, type GuestMemory } from '../memory/guest-memory.ts';
import { pfnOf, type StreamRecord } from '../stream/records.ts';

/**
 * Huge host pages (QEMU with 2 MiB or 1 GiB hugetlbfs): userfaultfd places a whole host page at
 * once, so a guest page becomes accessible only when every page of its host page has arrived
 * (shared/reference/postcopy.md §2: a fault blocks until the whole huge page is there).
 * Counts, per host page, the outstanding pages still to arrive.
 */
export class HostPages {
  private readonly missing: Int32Array;
  /** Pages that arrived (a piece of a host page still incomplete is thrown away at a pause: dropPieces). */
  readonly arrived: Uint8Array;

  constructor(private readonly memory: GuestMemory, readonly pagesPerHostPage: number, alloc: Alloc) {
    this.missing = alloc.int32(Math.ceil(memory.pages / pagesPerHostPage));
    this.arrived = alloc.uint8(memory.pages);
    for (let g = 0; g < memory.pages; g++) {
      if (memory.state[g] !== PageState.READY) this.missing[Math.floor(g / pagesPerHostPage)]!++;
    }
  }

  /** Page g arrived; returns its host page's first gfn when that host page is now complete, else −1. */
  arrive(gfn: number): number {
    const h = Math.floor(gfn / this.pagesPerHostPage);
    this.arrived[gfn] = 1;
    return --this.missing[h]! === 0 ? h * this.pagesPerHostPage : -1;
  }

  /** How many host pages a PAGE_DATA record's pages would complete, changing nothing. */
  completedBy(rec: StreamRecord): number {
    let n = 0;
    for (let i = 0; i < rec.count; i++) if (--this.missing[Math.floor(pfnOf(rec, i) / this.pagesPerHostPage)]! === 0) n++;
    for (let i = 0; i < rec.count; i++) this.missing[Math.floor(pfnOf(rec, i) / this.pagesPerHostPage)]!++;
    return n;
  }

  /**
   * A pause: the pieces of host pages not yet complete are thrown away, not received (QEMU's
   * `postcopy_temp_page_reset` in `postcopy_pause_incoming`: "useless because we didn't mark them
   * as received"), so the source sends them again. Returns how many pieces.
   */
  dropPieces(): number {
    const per = this.pagesPerHostPage, arrived = this.arrived;
    let dropped = 0;
    for (let h = 0; h < this.missing.length; h++) {
      if (this.missing[h] === 0) continue;
      for (let g = h * per, end = this.end(h * per); g < end; g++) {
        if (arrived[g] === 1 && this.memory.state[g] !== PageState.READY) {
          arrived[g] = 0;
          this.missing[h]!++;
          dropped++;
        }
      }
    }
    return dropped;
  }

  /** One past the last gfn of the host page starting at `first`. */
  end(first: number): number {
    return Math.min(first + this.pagesPerHostPage, this.memory.pages);
  }
}
