/**
 * The pager's pending slots: for each pfn, the ring requests waiting for it (a pfn can have
 * several: several vCPUs, or a range request covering it). Linked lists in a growable pool of
 * typed arrays, so a wait costs no allocation.
 */
export class Waiters {
  private readonly head: Int32Array;
  private req: Int32Array;
  private next: Int32Array;
  private freeHead = -1;
  private used = 0;
  live = 0;

  constructor(pages: number) {
    this.head = new Int32Array(pages).fill(-1);
    this.req = new Int32Array(64);
    this.next = new Int32Array(64);
  }

  add(gfn: number, request: number): void {
    let e: number;
    if (this.freeHead >= 0) {
      e = this.freeHead;
      this.freeHead = this.next[e]!;
    } else {
      if (this.used === this.req.length) this.grow();
      e = this.used++;
    }
    this.req[e] = request;
    this.next[e] = this.head[gfn]!;
    this.head[gfn] = e;
    this.live++;
  }

  /** Calls `fn` for every request waiting on gfn and forgets them. */
  release(gfn: number, fn: (request: number) => void): void {
    let e = this.head[gfn]!;
    if (e < 0) return;
    this.head[gfn] = -1;
    while (e >= 0) {
      const n = this.next[e]!;
      fn(this.req[e]!);
      this.next[e] = this.freeHead;
      this.freeHead = e;
      this.live--;
      e = n;
    }
  }

  private grow(): void {
    const r = new Int32Array(this.req.length * 2); r.set(this.req); this.req = r;
    const n = new Int32Array(this.next.length * 2); n.set(this.next); this.next = n;
  }
}
