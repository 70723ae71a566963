import { NextMember, popcount32 } from '../memory/skip-list.ts';

/**
 * What precopy knows per page, a bit each: still to send in this pass (QEMU's migration bitmap),
 * sent at least once, and stale at the destination (written since it was last sent), with the
 * scan cursor that takes pages to send in address order.
 */
export class SendSet {
  readonly toSend: NextMember;
  private readonly sentOnce: Uint32Array;
  /** Nothing is at the destination yet: every page is stale until sent. */
  readonly stale: Uint32Array;
  cursor = 0;
  /** Zero pages among the pages the last `take` returned. */
  takenZeros = 0;

  constructor(private readonly pages: number) {
    this.toSend = new NextMember(pages);
    this.sentOnce = new Uint32Array((pages + 31) >>> 5);
    this.stale = new Uint32Array((pages + 31) >>> 5).fill(~0);
  }

  /**
   * Takes the next pages to send, in scan order from the cursor, a 32-page word at a time: up to
   * `max` pages (data pages only, when `dataOnly`). Returns how many; `takenZeros` of them are
   * zero pages (by `zeroSet`, null when nobody checks).
   */
  take(max: number, dataOnly: boolean, zeroSet: NextMember | null): number {
    const toSend = this.toSend, pages = this.pages;
    let n = 0, zeros = 0, g = toSend.next(this.cursor);
    while (g < pages && (dataOnly ? n - zeros : n) < max) {
      const w = g >>> 5;
      let bits = toSend.word(w) & (~0 << (g & 31));
      let zb = zeroSet ? bits & zeroSet.word(w) : 0;
      const room = max - (dataOnly ? n - zeros : n);
      // Stop after the room-th counted page: with data pages only, zero pages past it stay.
      if (dataOnly ? popcount32(bits & ~zb) >= room : popcount32(bits) > room) {
        let keep = 0;
        for (let b = 0, counted = 0; counted < room; b++) {
          const bit = 1 << b;
          if ((bits & bit) === 0) continue;
          keep |= bit;
          if (!dataOnly || (zb & bit) === 0) counted++;
        }
        bits = keep;
        zb &= keep;
      }
      toSend.removeBits(w, bits);
      this.sentOnce[w]! |= bits;
      this.stale[w]! &= ~bits;
      n += popcount32(bits);
      zeros += popcount32(zb);
      g = toSend.next(g);
    }
    this.cursor = g;
    this.takenZeros = zeros;
    return n;
  }

  /** Whether page g was sent at least once. */
  sentBefore(g: number): boolean {
    return ((this.sentOnce[g >>> 5]! >>> (g & 31)) & 1) === 1;
  }

  /** Pages the destination holds older data of than the source, outside the pages still to send. */
  staleOutside(): number {
    let stale = 0;
    const words = this.stale.length, tail = this.pages & 31;
    for (let w = 0; w < words; w++) {
      const bits = this.stale[w]! & ~this.toSend.word(w) & (w === words - 1 && tail !== 0 ? (1 << tail) - 1 : ~0);
      stale += popcount32(bits);
    }
    return stale;
  }
}
