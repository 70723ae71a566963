import { FRESH, NO_FLOAT64S, NO_INT32S, doubled, type Alloc } from '../memory/arena.ts';

/** pfns per chunk of list heads: 4 KiB of Int32, one page of memory. */
const HEAD_BITS = 10;
const HEAD_CHUNK = 1 << HEAD_BITS;

/** Who hears the requests a load releases (an object's method: the same function in every run). */
export interface WaitTarget {
  /** `pages` of the pages `request` waits for arrived. */
  arrived(request: number, pages: number): void;
}

/**
 * The pager's pending slots: which ring requests wait for which pfns (a pfn can have several:
 * several vCPUs, or a range request covering it). A request for one page waits in a per-pfn
 * linked list, in a growable pool of typed arrays, so a wait costs no allocation; a bit per pfn
 * says which have waits, so a load with nobody waiting reads that bit only. The heads come in
 * chunks of HEAD_CHUNK pfns, each taken at the first wait in it and given back when its last
 * wait goes: a first touch of fresh memory costs a page fault per 4 KiB (~15 µs on this
 * project's VM), so a pfn-sized array that a storm's few thousand scattered waits touch all over
 * costs more than the storm, while a few chunks in use at once are reused all run long (a
 * head is read only while its pfn's bit is set, so a reused chunk needs no clearing).
 *
 * A range request waits as one entry (its range and how many of its pages it still waits
 * for), not one per page: a range covering a 16 GiB guest books and releases a word at a time.
 * Every page of the range that is not settled when it is booked is loaded or dropped exactly
 * once later, so each release in the range counts one page for it. Requests hear of their pages
 * in the order of a wait per page: page by page, the newest wait on a page first (each wait
 * carries the order of its add), so a range request answered at a page is answered where its
 * per-page waits would have been.
 */
export class Waiters {
  /** Per pfn with its bit set in `waited`, its first entry: chunk pfn >>> HEAD_BITS, made on first use. */
  private readonly head: (Int32Array | undefined)[];
  /** Per chunk, its pfns with waits; chunks whose last wait went, for reuse. */
  private readonly chunkWaits: Int32Array;
  private readonly spare: Int32Array[] = [];
  private readonly waited: Int32Array;
  private req: Int32Array;
  private next: Int32Array;
  /** Each entry's add order (shared with the range entries). */
  private order: Float64Array;
  private freeHead = -1;
  private clock = 0;
  /** The range entries 0..ranges−1: request, pages from..to−1, pages still awaited, add order. */
  private rReq = new Int32Array(8);
  private rFrom = new Int32Array(8);
  private rTo = new Int32Array(8);
  private rLeft = new Int32Array(8);
  private rOrder = new Float64Array(8);
  private ranges = 0;
  /** Range entries answered by the release being run: at page, add order, request, pages. */
  private readonly done = { page: [] as number[], order: [] as number[], req: [] as number[], pages: [] as number[] };
  /** Waits not released yet: one per page of each request. */
  live = 0;

  constructor(pages: number, private readonly alloc: Alloc = FRESH) {
    this.head = new Array<Int32Array | undefined>(Math.ceil(pages / HEAD_CHUNK)).fill(undefined);
    this.chunkWaits = alloc.int32(this.head.length);
    this.waited = alloc.int32((pages + 31) >>> 5);
    // Empty until the first add grows the pool: the growth then has V8 type feedback from every
    // run's first wait, not only from a run with more than a pool's worth at once.
    this.req = this.next = NO_INT32S;
    this.order = NO_FLOAT64S;
  }

  /** `request` waits for page gfn. */
  add(gfn: number, request: number): void {
    if (this.freeHead < 0) this.grow();
    const e = this.freeHead;
    this.freeHead = this.next[e]!;
    this.req[e] = request;
    this.order[e] = this.clock++;
    const w = gfn >>> 5, bit = 1 << (gfn & 31), c = gfn >>> HEAD_BITS;
    const heads = this.head[c] ?? (this.head[c] = this.spare.pop() ?? this.alloc.int32(HEAD_CHUNK));
    if ((this.waited[w]! & bit) === 0) {
      this.waited[w]! |= bit;
      this.chunkWaits[c]!++;
      this.next[e] = -1;
    } else this.next[e] = heads[gfn & (HEAD_CHUNK - 1)]!;
    heads[gfn & (HEAD_CHUNK - 1)] = e;
    this.live++;
  }

  /** `request` waits for the `pages` pages of from..to−1 not settled yet (pages > 0). */
  addRange(from: number, to: number, request: number, pages: number): void {
    const i = this.ranges++;
    if (i === this.rReq.length) this.widenRanges();
    this.rReq[i] = request;
    this.rFrom[i] = from;
    this.rTo[i] = to;
    this.rLeft[i] = pages;
    this.rOrder[i] = this.clock++;
    this.live += pages;
  }

  /** Whether a one-page wait is booked on gfn (range waits are not looked at). */
  waitedOn(gfn: number): boolean {
    return ((this.waited[gfn >>> 5]! >>> (gfn & 31)) & 1) === 1;
  }

  /** Tells `to` of every request waiting on gfn and forgets them. */
  release(gfn: number, to: WaitTarget): void {
    if (this.live === 0) return;
    if (this.ranges > 0) {
      this.releaseRange(gfn, gfn + 1, to);
      return;
    }
    const w = gfn >>> 5, bit = 1 << (gfn & 31);
    if ((this.waited[w]! & bit) === 0) return;
    this.waited[w]! &= ~bit;
    this.releaseList(gfn, to, 0);
    this.unwaited(gfn);
  }

  /** gfn's list was emptied: its chunk goes back to the spares once it has no other. */
  private unwaited(gfn: number): void {
    const c = gfn >>> HEAD_BITS;
    if (--this.chunkWaits[c]! > 0) return;
    this.spare.push(this.head[c]!);
    this.head[c] = undefined;
  }

  /** release() for every page of from..to−1 in order, skipping a word of pages nobody waits on at once. */
  releaseRange(from: number, to: number, target: WaitTarget): void {
    if (this.live === 0) return;
    const answered = this.ranges > 0 ? this.countRanges(from, to, target) : 0;
    const done = this.done;
    let d = 0;
    for (let g = from; g < to;) {
      const w = this.waited[g >>> 5]!;
      if (w === 0) g = (g | 31) + 1;
      else {
        if ((w >>> (g & 31)) & 1) {
          // Range requests answered at an earlier page come first.
          for (; d < answered && done.page[d]! < g; d++) target.arrived(done.req[d]!, done.pages[d]!);
          this.waited[g >>> 5]! &= ~(1 << (g & 31));
          d = this.releaseList(g, target, d, answered);
          this.unwaited(g);
        }
        g++;
      }
    }
    for (; d < answered; d++) target.arrived(done.req[d]!, done.pages[d]!);
  }

  /**
   * Counts the pages of from..to−1 for every range entry overlapping them; the entries answered
   * here are removed and listed in `done` by page, newest first on one page. Returns how many.
   */
  private countRanges(from: number, to: number, target: WaitTarget): number {
    const done = this.done;
    let n = 0;
    for (let i = 0; i < this.ranges;) {
      const lo = Math.max(from, this.rFrom[i]!), hi = Math.min(to, this.rTo[i]!);
      if (lo >= hi) {
        i++;
        continue;
      }
      const left = this.rLeft[i]!, k = hi - lo;
      if (k > left) throw new Error(`invariant: ${k} pages of ${lo}..${hi - 1} released for request ${this.rReq[i]}, which waits for ${left}`);
      this.live -= k;
      if (k < left) {
        this.rLeft[i] = left - k;
        target.arrived(this.rReq[i]!, k);
        i++;
        continue;
      }
      // Its last page is lo + left − 1: sorted in by page, then newest first.
      const page = lo + left - 1, order = this.rOrder[i]!;
      let j = n++;
      for (; j > 0 && (done.page[j - 1]! > page || (done.page[j - 1] === page && done.order[j - 1]! < order)); j--) {
        done.page[j] = done.page[j - 1]!;
        done.order[j] = done.order[j - 1]!;
        done.req[j] = done.req[j - 1]!;
        done.pages[j] = done.pages[j - 1]!;
      }
      done.page[j] = page;
      done.order[j] = order;
      done.req[j] = this.rReq[i]!;
      done.pages[j] = left;
      this.removeRangeEntry(i);
    }
    return n;
  }

  /**
   * Tells `to` of the requests in gfn's list, newest first, and frees the entries; the range
   * requests answered at gfn (`done` from d to `answered`) go in by add order. Returns the next d.
   */
  private releaseList(gfn: number, to: WaitTarget, d: number, answered = 0): number {
    const done = this.done;
    let e = this.head[gfn >>> HEAD_BITS]![gfn & (HEAD_CHUNK - 1)]!;
    while (e >= 0) {
      for (; d < answered && done.page[d] === gfn && done.order[d]! > this.order[e]!; d++) to.arrived(done.req[d]!, done.pages[d]!);
      const n = this.next[e]!;
      to.arrived(this.req[e]!, 1);
      this.next[e] = this.freeHead;
      this.freeHead = e;
      this.live--;
      e = n;
    }
    for (; d < answered && done.page[d] === gfn; d++) to.arrived(done.req[d]!, done.pages[d]!);
    return d;
  }

  /** Entry i goes; the last takes its place (their order does not matter). */
  private removeRangeEntry(i: number): void {
    const last = --this.ranges;
    this.rReq[i] = this.rReq[last]!;
    this.rFrom[i] = this.rFrom[last]!;
    this.rTo[i] = this.rTo[last]!;
    this.rLeft[i] = this.rLeft[last]!;
    this.rOrder[i] = this.rOrder[last]!;
  }

  private widenRanges(): void {
    this.rReq = doubled(this.rReq);
    this.rFrom = doubled(this.rFrom);
    this.rTo = doubled(this.rTo);
    this.rLeft = doubled(this.rLeft);
    this.rOrder = doubled(this.rOrder);
  }

  /** The free list is empty: doubles the pool (64 at first), its new entries the free list in order. */
  private grow(): void {
    const old = this.req.length, size = Math.max(64, old * 2);
    const r = this.alloc.int32(size); r.set(this.req); this.req = r;
    const n = this.alloc.int32(size); n.set(this.next); this.next = n;
    const o = this.alloc.float64(size); o.set(this.order); this.order = o;
    for (let e = old; e < size; e++) n[e] = e + 1 < size ? e + 1 : -1;
    this.freeHead = old;
  }
}
