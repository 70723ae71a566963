import { FRESH, type Alloc } from './arena.ts';

/**
 * "Next index still in the set" over 0..n-1, as a union-find with path halving: removing an
 * index is O(1), finding the next member from any position is amortised near O(1). Used for
 * the source's next unsent page and the mapper's next page not yet asked for, so that scans
 * never walk the same page twice.
 */
export class NextMember {
  private readonly parent: Int32Array;

  constructor(readonly size: number, alloc: Alloc = FRESH) {
    this.parent = alloc.int32(size + 1);
    for (let i = 0; i <= size; i++) this.parent[i] = i;
  }

  has(i: number): boolean {
    return this.parent[i] === i && i < this.size;
  }

  remove(i: number): void {
    this.parent[i] = i + 1;
  }

  /** The first member at or after i, or `size` when none is left. */
  next(i: number): number {
    if (i >= this.size) return this.size;
    const p = this.parent;
    while (p[i] !== i) {
      const up = p[p[i]!]!;
      p[i] = up;
      i = up;
    }
    return i;
  }
}

/**
 * The mirror of NextMember: "previous index still in the set" over 0..n-1, for scans that walk
 * downwards (the bubbling policy's left edge). Slot i + 1 stands for index i; slot 0 is the
 * "none left" sentinel, so prev() returns −1 when nothing at or below i is a member.
 */
export class PrevMember {
  private readonly parent: Int32Array;

  constructor(readonly size: number, alloc: Alloc = FRESH) {
    this.parent = alloc.int32(size + 1);
    for (let i = 0; i <= size; i++) this.parent[i] = i;
  }

  remove(i: number): void {
    this.parent[i + 1] = i;
  }

  /** The last member at or before i, or −1 when none is left. */
  prev(i: number): number {
    if (i < 0) return -1;
    let j = (i >= this.size ? this.size - 1 : i) + 1;
    const p = this.parent;
    while (p[j] !== j) {
      const up = p[p[j]!]!;
      p[j] = up;
      j = up;
    }
    return j - 1;
  }
}
