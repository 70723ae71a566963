import type { NextMember } from '../memory/skip-list.ts';

/**
 * Where the source's background push goes next. The source asks for one pfn at a time while
 * filling a record and tells the policy which requested pfns it just took.
 */
export interface PushPolicy {
  readonly name: string;
  /** A requested pfn was put into the record being built. */
  requested(gfn: number): void;
  /** The next unsent pfn to push in the background, or -1 for none. */
  nextBackground(): number;
}

/**
 * Xen's RFC source: a linear scan of unsent pfns that continues from the last faulted pfn + 1
 * (locality), wrapping once it reaches the end of memory.
 */
export class XenPush implements PushPolicy {
  readonly name = 'xen';
  private cursor = 0;

  constructor(private readonly unsent: NextMember) {}

  requested(gfn: number): void {
    this.cursor = gfn + 1;
  }

  nextBackground(): number {
    const n = this.unsent.size;
    let g = this.unsent.next(this.cursor < n ? this.cursor : n);
    if (g >= n) g = this.unsent.next(0);
    if (g >= n) return -1;
    this.cursor = g + 1;
    return g;
  }
}

/** Pure demand paging: nothing is pushed; only requested pages travel. */
export class DemandOnly implements PushPolicy {
  readonly name = 'demand';
  requested(): void {}
  nextBackground(): number {
    return -1;
  }
}

export function makePolicy(name: 'xen' | 'demand', unsent: NextMember): PushPolicy {
  return name === 'xen' ? new XenPush(unsent) : new DemandOnly();
}
