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
  override readonly name: string = 'adaptive-chunk';
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

/**
 * CRIU's lazy-pages daemon as a whole (criu/uffd.c): request and reply. A fault is asked for at
 * once (`handle_page_fault` → `uffd_handle_pages`) and answered alone, after whatever the page
 * server is already sending; the next background chunk is asked for only when every request has
 * been answered (`handle_requests` calls `xfer_pages` only while `lpi->reqs` is empty), so one
 * chunk is in flight at a time. Chunk sizes as adaptive-chunk.
 */
export class LazyPagesPush extends AdaptiveChunkPush {
  override readonly name = 'lazy-pages';
  /** A chunk was sent and the daemon has not asked for the next yet. */
  private awaiting = false;
  /** The record being built answers requests: it carries nothing else. */
  private replying = false;

  override requested(gfn: number): void {
    super.requested(gfn);
    this.replying = true;
  }

  override backgroundBudget(): number {
    return this.awaiting || this.replying ? 0 : this.chunk;
  }

  override backgroundSent(count: number): void {
    super.backgroundSent(count);
    this.replying = false;
    if (count > 0) this.awaiting = true;
  }

  pulled(): void {
    this.awaiting = false;
  }
}
