import type { NextMember } from '../memory/skip-list.ts';
import type { PfnSlab } from '../stream/slab.ts';
import { XenPush } from './policy.ts';

/**
 * Yabusame (Hirofuchi et al., postcopy for QEMU/KVM): with each requested page X the source also
 * sends the `after` pages X+1 … X+after and the `before` pages X−before … X−1 that are still
 * unsent, ahead of any background page, and the background scan continues after the last page
 * prefaulted (X + after + 1), wrapping at the end of memory.
 *
 * Prefaulted pages are served from a FIFO of ranges, behind the requests already queued at the
 * source (a requested page is never delayed by another fault's neighbours) and ahead of the
 * background scan; they fill the rest of the record the requested page went into, and the
 * following records if they do not fit. They count as pushed, not demand-fetched.
 */
export class PrefaultPush extends XenPush {
  override readonly name = 'prefault';
  /** Pending prefault ranges as (next, end) pairs, oldest first. */
  private readonly ranges: number[] = [];
  private head = 0;

  constructor(unsent: NextMember, private readonly after: number, private readonly before: number) {
    super(unsent);
  }

  override requested(gfn: number): void {
    const n = this.unsent.size;
    const end = Math.min(gfn + 1 + this.after, n);
    if (end > gfn + 1) this.ranges.push(gfn + 1, end);
    if (this.before > 0 && gfn > 0) this.ranges.push(Math.max(0, gfn - this.before), gfn);
    this.cursor = end;
  }

  override nextBackground(): number {
    const r = this.ranges;
    while (this.head < r.length) {
      const g = this.unsent.next(r[this.head]!);
      if (g < r[this.head + 1]!) {
        r[this.head] = g + 1;
        return g;
      }
      this.head += 2;
    }
    if (this.head > 0) {
      r.length = 0;
      this.head = 0;
    }
    return super.nextBackground();
  }

  /** Page by page while prefault ranges are pending (they come first), then the linear scan's words. */
  override takeBackground(slab: PfnSlab, max: number): number {
    let n = 0;
    while (n < max && this.head < this.ranges.length) {
      const g = this.nextBackground();
      if (g < 0) return n;
      slab.push(g);
      this.unsent.remove(g);
      n++;
    }
    return n + super.takeBackground(slab, max - n);
  }
}
