import { FRESH, type Alloc } from '../memory/arena.ts';

/**
 * The pager's pending slots: for each pfn, the ring requests waiting for it (a pfn can have
 * several: several vCPUs, or a range request covering it). Linked lists in a growable pool of
 * typed arrays, so a wait costs no allocation.
 */
export class Waiters {
  /** Per pfn, its first entry + 1 (0: none), so a fresh zeroed array needs no filling. */
  private readonly head: Int32Array;
  private req: Int32Array;
  private next: Int32Array;
  private freeHead = -1;
  private used = 0;
  private free = 0;
  live = 0;

  constructor(pages: number, alloc: Alloc = FRESH) {
    this.head = alloc.int32(pages);
    this.req = new Int32Array(64);
    this.next = new Int32Array(64);
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
    this.next[e] = this.head[gfn]! - 1;
    this.head[gfn] = e + 1;
    this.live++;
  }

  /** Calls `fn` for every request waiting on gfn and forgets them. */
  release(gfn: number, fn: (request: number) => void): void {
    let e = this.head[gfn]! - 1;
    if (e < 0) return;
    this.head[gfn] = 0;
    while (e >= 0) {
      const n = this.next[e]!;
      fn(this.req[e]!);
      this.next[e] = this.freeHead;
      this.freeHead = e;
      this.free++;
      this.live--;
      e = n;
    }
  }

  private resize(size: number): void {
    const r = new Int32Array(size); r.set(this.req); this.req = r;
    const n = new Int32Array(size); n.set(this.next); this.next = n;
  }
}
