import type { NextMember } from '../memory/skip-list.ts';
import type { PushPolicy } from './policy.ts';

/**
 * Bubbling (Hines & Gopalan, "Post-copy based live virtual machine migration using adaptive
 * pre-paging and dynamic self-ballooning", VEE 2009): every requested page X becomes a pivot,
 * replacing the oldest of the `pivots` kept (the VEE paper keeps 1, which drops the old push
 * order at once; the journal version found 7 best). Around each pivot a bubble pushes X+1, X−1,
 * X+2, X−2, … (`forward`: X+1, X+2, …), skipping pages already sent; several bubbles take turns,
 * newest first. Once no bubble has anything left, a linear scan sends what is still unsent.
 *
 * Per pivot: its pfn and the next position in its sequence, p = 2(d − 1) + side (side 0 = X + d,
 * 1 = X − d). Skipping uses `unsent.next` upwards and `unsent.prev` downwards, so each
 * pushed page costs amortised O(1) however many sent pages a bubble jumps over.
 */
export class BubblingPush implements PushPolicy {
  readonly name = 'bubbling';
  private readonly pivot: Int32Array;
  private readonly pos: Float64Array;
  private readonly forward: boolean;
  /** Slot the next pivot goes into (the oldest); −1 marks an empty or exhausted slot. */
  private head = 0;
  /** Slot whose bubble pushes next. */
  private turn = 0;
  private live = 0;
  private scan = 0;

  constructor(
    private readonly unsent: NextMember,
    private readonly k: number,
    direction: 'both' | 'forward',
  ) {
    this.forward = direction === 'forward';
    this.pivot = new Int32Array(k).fill(-1);
    this.pos = new Float64Array(k);
  }

  /** A fault at X: X goes out with the demand, X becomes the newest pivot. */
  requested(gfn: number): void {
    const s = this.head;
    if (this.pivot[s] === -1) this.live++;
    this.pivot[s] = gfn;
    this.pos[s] = 0;
    this.turn = s;
    this.head = (s + 1) % this.k;
  }

  nextBackground(): number {
    while (this.live > 0) {
      const s = this.turn;
      // Newest first, then older ones: walk the slots backwards from the newest.
      this.turn = (s + this.k - 1) % this.k;
      if (this.pivot[s] === -1) continue;
      const g = this.grow(s);
      if (g >= 0) return g;
      this.pivot[s] = -1;
      this.live--;
    }
    const n = this.unsent.size;
    const g = this.unsent.next(this.scan);
    if (g >= n) return -1;
    this.scan = g + 1;
    return g;
  }

  /** The next unsent page of slot s's bubble, advancing it, or −1 when the bubble is spent. */
  private grow(s: number): number {
    const x = this.pivot[s]!, p = this.pos[s]!, n = this.unsent.size;
    const d = Math.floor(p / 2) + 1;
    if (this.forward) {
      const r = this.unsent.next(x + d);
      if (r >= n) return -1;
      this.pos[s] = 2 * (r - x);
      return r;
    }
    // Candidates: the first unsent page right of x at distance ≥ d (≥ d + 1 once X + d was
    // taken) and the first unsent page left of x at distance ≥ d. The nearer one goes; on a
    // tie the right one, as in X+1, X−1, X+2, X−2.
    const r = this.unsent.next(x + (p % 2 === 0 ? d : d + 1));
    const l = this.unsent.prev(x - d);
    const dr = r < n ? r - x : Infinity, dl = l >= 0 ? x - l : Infinity;
    if (dr === Infinity && dl === Infinity) return -1;
    if (dr <= dl) {
      this.pos[s] = 2 * (dr - 1) + 1;
      return r;
    }
    this.pos[s] = 2 * dl;
    return l;
  }

  faulted(): void {}

  backgroundBudget(room: number): number {
    return room;
  }

  backgroundSent(): void {}
}
