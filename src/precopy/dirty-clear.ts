import { popcount32 } from '../memory/skip-list.ts';
import type { Scenario } from '../scenario/schema.ts';

/**
 * QEMU's lazy clear of the dirty log (KVM's manual protect, `KVM_CLEAR_DIRTY_LOG`): a sync only
 * reads the log, and the migration thread write-protects a chunk's dirty pages again just before
 * it sends the chunk's first page (`migration_clear_memory_region_dirty_bitmap`, chunks of
 * `clear-bitmap-shift`: 2^18 pages, 1 GiB). The log starts all set (KVM_DIRTY_LOG_INITIALLY_SET),
 * so each chunk's first send after setup clears every page of it. Per chunk: pages to clear.
 */
export class DirtyClear {
  private readonly pending: Float64Array;

  private constructor(private readonly pages: number, private readonly shift: number, private readonly perPageNs: number) {
    this.pending = new Float64Array(Math.ceil(pages / 2 ** shift));
    for (let c = 0; c < this.pending.length; c++) this.pending[c] = this.chunkSize(c);
  }

  /** The clear QEMU's source does (0 cost: none is modelled, null). */
  static of(s: Scenario): DirtyClear | null {
    const p = s.precopy;
    return s.source.policy === 'qemu' && p.clearPerPageNs > 0 ? new DirtyClear(s.memory.pages, p.clearBitmapShift, p.clearPerPageNs) : null;
  }

  private chunkSize(c: number): number {
    return Math.min(this.pages - c * 2 ** this.shift, 2 ** this.shift);
  }

  /** A sync found the pages of `bits` in log word `w` dirty: their chunk clears them at its next send. */
  dirtied(w: number, bits: number): void {
    const c = (w << 5) >>> this.shift;
    // A page dirty at two syncs without a send between is cleared once.
    this.pending[c] = Math.min(this.pending[c]! + popcount32(bits), this.chunkSize(c));
  }

  /** The migration thread sends pages in [from, to): the clears due first, ns. */
  sendRange(from: number, to: number): number {
    let ns = 0;
    for (let c = from >>> this.shift, last = (to - 1) >>> this.shift; c <= last; c++) ns += this.take(c);
    return ns;
  }

  /** The migration thread sends `count` pages listed in `pfns` from `at`: the clears due first, ns. */
  sendPages(pfns: Int32Array, at: number, count: number): number {
    let ns = 0;
    for (let i = at, end = at + count; i < end; i++) {
      const c = pfns[i]! >>> this.shift;
      if (this.pending[c]! > 0) ns += this.take(c);
    }
    return ns;
  }

  private take(c: number): number {
    const n = this.pending[c]!;
    this.pending[c] = 0;
    return Math.round(n * this.perPageNs);
  }
}
