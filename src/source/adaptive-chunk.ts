import type { NextMember } from '../memory/skip-list.ts';
import { XenPush } from './policy.ts';

/**
 * CRIU's lazy-pages daemon (criu/uffd.c): background pages go out in chunks that start at
 * DEFAULT_XFER_LEN (64 KiB = 16 pages of 4 KiB), grow by that much after every chunk sent and
 * are capped at MAX_XFER_LEN (4 MiB = 1024 pages); a page fault resets the chunk to 64 KiB, so
 * a guest that faults gets small records that do not delay its next request.
 *
 * In this model one record carries the requested pages still unsent (up to recordPages, as for
 * every policy) followed by one background chunk, so a record can be larger than recordPages.
 * A fault is a FAULT record read by the source. The background order is xen's: a linear scan
 * from the last requested pfn + 1, wrapping at the end of memory.
 */
export class AdaptiveChunkPush extends XenPush {
  override readonly name = 'adaptive-chunk';
  /** Pages in the next background chunk. */
  chunk: number;

  constructor(unsent: NextMember, private readonly minPages: number, private readonly maxPages: number) {
    super(unsent);
    this.chunk = minPages;
  }

  override faulted(): void {
    this.chunk = this.minPages;
  }

  override backgroundBudget(): number {
    return this.chunk;
  }

  override backgroundSent(count: number): void {
    if (count > 0) this.chunk = Math.min(this.chunk + this.minPages, this.maxPages);
  }
}
