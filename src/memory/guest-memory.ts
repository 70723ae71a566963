import { argCheck, intArg, objArg, pageSizeArg } from '../io/args.ts';
import { PostcopyEmuError } from '../io/errors.ts';
import type { Range } from '../scenario/schema.ts';
import type { Rng } from '../kernel/rng.ts';
import { FRESH, type Alloc } from './arena.ts';
import type { Space } from './space.ts';
import { NextMember } from './skip-list.ts';

/**
 * Per-pfn state at the destination, as in the RFC's pager: outstanding → requested → ready,
 * or outstanding → dropped. PAGING_IN is Xen's p2m_ram_paging_in: a ring request was put for the
 * page but the pager has not drained it yet (foreign accessors do not re-request such a page).
 */
export const enum PageState {
  READY = 0,
  OUTSTANDING = 1,
  PAGING_IN = 2,
  REQUESTED = 3,
  DROPPED = 4,
}

/**
 * Guest memory: one byte of state per page and three page sets for the content versions, which
 * only feed the checker's "no present page older than at the source". The source's version is
 * 2 for an outstanding page (dirtied after the destination's copy, or never copied) and 1 for
 * any other, frozen once the guest is paused there: one bit. The destination's is 0 until it
 * holds the source's copy (a bit, set by the load), then the source's plus the guest's writes
 * since: a byte per page touched only by a write, so a storm never touches it.
 */
export class GuestMemory {
  /** Where the page states and write counts live: the guest's touches run there (WebAssembly). */
  readonly space: Space;
  readonly state: Uint8Array;
  /** Pages whose source version is 2 (outstanding at the start); the rest are version 1. */
  private readonly sourceNewer: NextMember;
  /** Pages whose destination copy is the source's: never outstanding, or loaded since. */
  private readonly hasSourceCopy: NextMember;
  /** Guest writes at the destination per page, saturating at 255 (it still orders above the source's version). */
  private readonly writes: Uint8Array;
  /** Pages still OUTSTANDING (no ring request put yet), for the mapper's walk. */
  readonly unasked: NextMember;
  /** Pages whose contents are all zeros at the source, or null when there are none. */
  zero: NextMember | null = null;
  /** Outstanding + paging-in + requested: the RFC's nr_pending. */
  pending = 0;
  dropped = 0;
  readonly outstandingAtStart: number;

  constructor(readonly pages: number, readonly pageSize: number, outstanding: OutstandingSet, alloc: Alloc = FRESH) {
    intArg('GuestMemory.pages', pages, 1, 2 ** 30);
    pageSizeArg('GuestMemory.pageSize', pageSize);
    argCheck(typeof outstanding?.forEachRange === 'function', 'GuestMemory.outstanding', 'must be an OutstandingSet (outstandingSet(…))');
    this.space = alloc.space();
    this.state = this.space.uint8(pages);
    this.writes = this.space.uint8(pages);
    const unasked = (this.unasked = new NextMember(pages, alloc, false));
    let whole = false;
    // Whole runs at a time (ranges may overlap: filling twice changes nothing).
    outstanding.forEachRange((from, to) => {
      this.space.fill(this.state, PageState.OUTSTANDING, from, to);
      unasked.addRange(from, to);
      whole ||= from === 0 && to === pages;
    });
    this.sourceNewer = NextMember.copyOf(unasked, alloc);
    // Every page outstanding (a storm): nothing holds the source's copy and the count is known,
    // without two passes over the words (140 ms of a 1 TiB guest's 370 ms construction).
    this.hasSourceCopy = whole ? new NextMember(pages, alloc, false) : NextMember.complementOf(unasked, alloc);
    this.pending = this.outstandingAtStart = whole ? pages : unasked.count();
  }

  /** Where the write counts are in the space (the vCPUs' slices write them there). */
  get writesAt(): number {
    return this.writes.byteOffset;
  }

  /** The page's content version at the source. */
  sourceVersion(gfn: number): number {
    this.gfn('sourceVersion', gfn);
    return this.sourceNewer.has(gfn) ? 2 : 1;
  }

  /** The page's content version at the destination: 0 before it holds the source's copy. */
  destVersion(gfn: number): number {
    this.gfn('destVersion', gfn);
    return this.hasSourceCopy.has(gfn) ? this.sourceVersion(gfn) + this.writes[gfn]! : 0;
  }

  /**
   * A gfn inside guest memory: a fraction, a negative or a page past the end would silently
   * index nothing in the typed arrays. One compare and one modulo per call.
   */
  private gfn(method: string, gfn: number): void {
    if (!(gfn >= 0 && gfn < this.pages) || gfn % 1 !== 0) {
      throw new PostcopyEmuError(`GuestMemory.${method}.gfn`, `GuestMemory.${method}.gfn: must be an integer in 0..${this.pages - 1}, got ${gfn}`);
    }
  }

  isZero(gfn: number): boolean {
    this.gfn('isZero', gfn);
    return this.zero !== null && this.zero.has(gfn);
  }

  /** Xen put a page-in request for the page on the ring (p2m_ram_paging_in). */
  markPagingIn(gfn: number): void {
    this.gfn('markPagingIn', gfn);
    this.state[gfn] = PageState.PAGING_IN;
    this.unasked.remove(gfn);
  }

  /**
   * markPagingIn() for every page of from..to−1 still OUTSTANDING (the others keep their state):
   * a range request put on the ring.
   */
  markPagingInRange(from: number, to: number): void {
    this.range('markPagingInRange', from, to);
    // `unasked` holds exactly the OUTSTANDING pages: the rest of the range is not in it. Before
    // the loop, not after: see markRequestedRange.
    this.unasked.removeRange(from, to);
    const state = this.state;
    for (let g = from; g < to; g++) if (state[g] === PageState.OUTSTANDING) state[g] = PageState.PAGING_IN;
  }

  /** The pager forwarded the page to the source; false if it was already requested or present. */
  markRequested(gfn: number): boolean {
    this.gfn('markRequested', gfn);
    const s = this.state[gfn];
    if (s !== PageState.OUTSTANDING && s !== PageState.PAGING_IN) return false;
    this.state[gfn] = PageState.REQUESTED;
    this.unasked.remove(gfn);
    return true;
  }

  /**
   * markRequested() for every page of from..to−1: the pages that were outstanding or paging in
   * become requested; returns how many did.
   */
  markRequestedRange(from: number, to: number): number {
    this.range('markRequestedRange', from, to);
    // Nothing after the loop: a long range's loop is optimised on-stack in its first call, before
    // any code after it ran, and that code, without type feedback, deoptimised it (2 to 48 times
    // in a 64-run sweep's worker, over its range runs). Without an OUTSTANDING page in the range
    // (none changes below) the removal changes nothing.
    this.unasked.removeRange(from, to);
    const state = this.state;
    let n = 0;
    for (let g = from; g < to; g++) {
      const s = state[g];
      if (s === PageState.OUTSTANDING || s === PageState.PAGING_IN) {
        state[g] = PageState.REQUESTED;
        n++;
      }
    }
    return n;
  }

  /** Ready or dropped: nothing will ever be loaded into it again. */
  isSettled(gfn: number): boolean {
    this.gfn('isSettled', gfn);
    const s = this.state[gfn];
    return s === PageState.READY || s === PageState.DROPPED;
  }

  isReady(gfn: number): boolean {
    this.gfn('isReady', gfn);
    return this.state[gfn] === PageState.READY;
  }

  /** A range from..to−1 inside guest memory (possibly empty); as cheap as gfn(). */
  private range(method: string, from: number, to: number): void {
    if (!(from >= 0 && from <= to && to <= this.pages) || from % 1 !== 0 || to % 1 !== 0) {
      throw new PostcopyEmuError(`GuestMemory.${method}`, `GuestMemory.${method}: must be a range inside 0..${this.pages}, got ${from}..${to}`);
    }
  }

  /** Pending pages (neither ready nor dropped) in from..to−1. */
  pendingIn(from: number, to: number): number {
    this.range('pendingIn', from, to);
    if (this.dropped > 0) {
      let n = 0;
      for (let g = from; g < to; g++) if (this.state[g] !== PageState.READY && this.state[g] !== PageState.DROPPED) n++;
      return n;
    }
    // Without dropped pages the ready ones are those holding the source's copy: a word at a time.
    return to - from - this.hasSourceCopy.countIn(from, to);
  }

  /** The first pending page in from..to−1, or `to` when none is. */
  firstPendingIn(from: number, to: number): number {
    this.range('firstPendingIn', from, to);
    if (this.dropped > 0) {
      let g = from;
      while (g < to && (this.state[g] === PageState.READY || this.state[g] === PageState.DROPPED)) g++;
      return g;
    }
    return this.hasSourceCopy.nextGap(from, to);
  }

  /** Loads the source's content of a pending page; returns false for a dropped page (discarded). */
  load(gfn: number): boolean {
    this.gfn('load', gfn);
    const s = this.state[gfn];
    if (s === PageState.DROPPED) return false;
    if (s === PageState.READY) throw new Error(`invariant: page ${gfn} loaded twice`);
    this.state[gfn] = PageState.READY;
    // Paging-in and requested pages already left `unasked`.
    if (s === PageState.OUTSTANDING) this.unasked.remove(gfn);
    this.hasSourceCopy.add(gfn);
    this.pending--;
    return true;
  }

  /**
   * load() for the run from..to−1 of pending pages, a word at a time in the page sets (the
   * pager's hot path: a record's pages come in runs). Returns false, changing nothing, when the
   * run holds a dropped page: the caller then loads page by page.
   */
  loadRun(from: number, to: number): boolean {
    this.gfn('loadRun', from);
    this.gfn('loadRun', to - 1);
    const state = this.state;
    // Dropped pages are rare (ballooning): without any, a run's READY pages are its source copies.
    if (this.dropped > 0) {
      for (let g = from; g < to; g++) if (state[g] === PageState.DROPPED) return false;
    }
    const ready = this.hasSourceCopy.firstIn(from, to);
    if (ready < to) throw new Error(`invariant: page ${ready} loaded twice`);
    this.space.fill(state, PageState.READY, from, to);
    // Paging-in and requested pages already left `unasked`: removing them again changes nothing.
    this.unasked.removeRange(from, to);
    this.hasSourceCopy.addRange(from, to);
    this.pending -= to - from;
    return true;
  }

  /** The guest no longer needs the page (ballooned out): the RFC's outstanding → dropped. */
  drop(gfn: number): void {
    this.gfn('drop', gfn);
    const s = this.state[gfn];
    if (s === PageState.READY || s === PageState.DROPPED) return;
    this.state[gfn] = PageState.DROPPED;
    this.unasked.remove(gfn);
    this.pending--;
    this.dropped++;
  }

  /** A guest write at the destination: only legal once the page is there. */
  write(gfn: number): void {
    this.gfn('write', gfn);
    if (this.state[gfn] !== PageState.READY) throw new Error(`invariant: write to missing page ${gfn}`);
    this.writeReady(gfn);
  }

  /** write() for a caller that has just seen the page READY (the vCPUs' hot loop). */
  writeReady(gfn: number): void {
    const v = this.writes[gfn]!;
    if (v < 255) this.writes[gfn] = v + 1;
  }
}

/**
 * The zero pages: a `fraction` of the pages drawn from `rng` (its stream goes on in
 * WebAssembly: nothing draws from it after), plus every page of `ranges` (null when there are none).
 */
export function drawZeroSet(pages: number, fraction: number, rng: Rng, ranges: readonly Range[] = [], alloc: Alloc = FRESH): NextMember | null {
  if (fraction <= 0 && ranges.length === 0) return null;
  const zero = new NextMember(pages, alloc, false);
  // One draw a page, in WebAssembly (a 16 GiB guest's 4 M draws were a tenth of its precopy run).
  if (fraction > 0) zero.addAll(alloc.space().drawFraction(rng, pages, fraction));
  for (const r of ranges) zero.addRange(r.start, r.start + r.count);
  return zero;
}

/** Enumerates the outstanding pfns as runs [from, to) without materialising a list. */
export interface OutstandingSet {
  forEachRange(fn: (from: number, to: number) => void): void;
}

export function outstandingSet(
  spec: { kind: 'all' } | { kind: 'ranges'; ranges: Range[] } | { kind: 'fraction'; fraction: number },
  pages: number,
  rng: Rng,
): OutstandingSet {
  objArg('outstandingSet.spec', spec, "a memory.outstanding section ({ kind: 'all' | 'ranges' | 'fraction', ... })");
  intArg('outstandingSet.pages', pages, 1, 2 ** 30);
  switch (spec.kind) {
    case 'all':
      return { forEachRange: (fn) => fn(0, pages) };
    case 'ranges':
      return { forEachRange: (fn) => { for (const r of spec.ranges) fn(r.start, r.start + r.count); } };
    case 'fraction':
      return {
        forEachRange: (fn) => {
          // One draw per page, in page order; consecutive drawn pages make one run.
          let from = -1;
          for (let g = 0; g < pages; g++) {
            if (rng.float() < spec.fraction) {
              if (from < 0) from = g;
            } else if (from >= 0) {
              fn(from, g);
              from = -1;
            }
          }
          if (from >= 0) fn(from, pages);
        },
      };
  }
  throw new PostcopyEmuError('outstandingSet.spec.kind', `outstandingSet.spec.kind: must be all, ranges or fraction, got ${String((spec as { kind: unknown }).kind)}`);
}
