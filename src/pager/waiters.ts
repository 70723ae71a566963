import { FRESH, type Alloc } from '../memory/arena.ts';

/** pfns per chunk of list heads: 4 KiB of Int32, one page of memory. */
const HEAD_BITS = 10;
const HEAD_CHUNK = 1 << HEAD_BITS;

/** Who hears the requests a load releases (an object's method: the same function in every run). */
export interface WaitTarget {
  pageArrivedFor(request: number): void;
}

/**
 * The pager's pending slots: for each pfn, the ring requests waiting for it (a pfn can have
 * several: several vCPUs, or a range request covering it). Linked lists in a growable pool of
 * typed arrays, so a wait costs no allocation. A bit per pfn says which have waits: a load with
 * nobody waiting reads that bit only. The heads come in chunks of HEAD_CHUNK pfns, each made at
 * the first wait in it: a first touch of fresh memory costs a page fault per 4 KiB (~15 µs on
 * this project's VM), so a pfn-sized array that a storm's few thousand scattered waits touch all
 * over costs more than the storm, while chunks come from memory the allocator reuses run after run.
 */
export class Waiters {
  /** Per pfn with its bit set in `waited`, its first entry: chunk pfn >>> HEAD_BITS, made on first use. */
  private readonly head: (Int32Array | undefined)[];
  private readonly waited: Int32Array;
  private req: Int32Array;
  private next: Int32Array;
  private freeHead = -1;
  private used = 0;
  private free = 0;
  live = 0;

  constructor(pages: number, private readonly alloc: Alloc = FRESH) {
    this.head = new Array<Int32Array | undefined>(Math.ceil(pages / HEAD_CHUNK)).fill(undefined);
    this.waited = alloc.int32((pages + 31) >>> 5);
    this.req = alloc.int32(64);
    this.next = alloc.int32(64);
    // The first pool starts on the free list, in the order `used` would hand it out: a run's
    // first adds then take the path of the later ones, whose V8 type feedback exists.
    for (let e = 0; e < 64; e++) this.next[e] = e + 1 < 64 ? e + 1 : -1;
    this.freeHead = 0;
    this.used = this.free = 64;
  }

  /** Makes room for `n` more waits at once (a range request), so the pool grows no further than needed. */
  reserve(n: number): void {
    const need = this.used + n - this.free;
    if (need > this.req.length) this.resize(Math.max(need, Math.min(this.req.length * 2, need + (need >> 3))));
  }

  add(gfn: number, request: number): void {
    let e: number;
    if (this.freeHead >= 0) {
      e = this.freeHead;
      this.freeHead = this.next[e]!;
      this.free--;
    } else {
      if (this.used === this.req.length) this.resize(this.req.length * 2);
      e = this.used++;
    }
    this.req[e] = request;
    const w = gfn >>> 5, bit = 1 << (gfn & 31);
    const heads = this.head[gfn >>> HEAD_BITS] ?? (this.head[gfn >>> HEAD_BITS] = this.alloc.int32(HEAD_CHUNK));
    if ((this.waited[w]! & bit) === 0) {
      this.waited[w]! |= bit;
      this.next[e] = -1;
    } else this.next[e] = heads[gfn & (HEAD_CHUNK - 1)]!;
    heads[gfn & (HEAD_CHUNK - 1)] = e;
    this.live++;
  }

  /** Tells `to` of every request waiting on gfn and forgets them. */
  release(gfn: number, to: WaitTarget): void {
    if (this.live === 0) return;
    const w = gfn >>> 5, bit = 1 << (gfn & 31);
    if ((this.waited[w]! & bit) === 0) return;
    this.waited[w]! &= ~bit;
    let e = this.head[gfn >>> HEAD_BITS]![gfn & (HEAD_CHUNK - 1)]!;
    while (e >= 0) {
      const n = this.next[e]!;
      to.pageArrivedFor(this.req[e]!);
      this.next[e] = this.freeHead;
      this.freeHead = e;
      this.free++;
      this.live--;
      e = n;
    }
  }

  /** release() for every page of from..to−1 in order, skipping a word of pages nobody waits on at once. */
  releaseRange(from: number, to: number, target: WaitTarget): void {
    if (this.live === 0) return;
    for (let g = from; g < to;) {
      const w = this.waited[g >>> 5]!;
      if (w === 0) g = (g | 31) + 1;
      else {
        if ((w >>> (g & 31)) & 1) this.release(g, target);
        g++;
      }
    }
  }

  private resize(size: number): void {
    const r = this.alloc.int32(size); r.set(this.req); this.req = r;
    const n = this.alloc.int32(size); n.set(this.next); this.next = n;
  }
}
