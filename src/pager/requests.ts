import { IntQueue } from '../kernel/int-queue.ts';
import type { Kernel } from '../kernel/kernel.ts';
import type { Alloc } from '../memory/arena.ts';
import type { QemuBlocktime } from '../metrics/blocktime.ts';
import { LatencyLog } from '../metrics/latency.ts';
import { PageState, type GuestMemory } from '../memory/guest-memory.ts';
import { RequestKind, type FaultRing } from '../ring/ring.ts';
import { NO_PFNS, RecordType } from '../stream/records.ts';
import { PfnSlab } from '../stream/slab.ts';
import type { PagerHost } from './pager.ts';
import { Waiters, type WaitTarget } from './waiters.ts';

/**
 * The pager's side of the ring's requests: which pages each taken request waits for (Waiters),
 * the FAULT or REQ_PAGES record being filled for the source, and the responses put back on the
 * ring, notified once per pager job (Xen's `vm_event_put_response` then one event-channel notify).
 */
export class Requests implements WaitTarget {
  private readonly waiters: Waiters;
  /** Per request id: how many of its pages it still waits for. */
  private remaining: Int32Array;
  /** Per request id: when it asked for its page first (a page request), else −1. */
  private askedAt: Float64Array;
  /** The next FAULT record's pfns and [start, count] ranges: the slabs' pending entries. */
  private readonly faultPfns: PfnSlab;
  private readonly faultRanges: PfnSlab;
  /** Answered request ids in notify order; the last `unflushed` are this job's. */
  private readonly responses = new IntQueue();
  private unflushed = 0;
  /** How many responses each notify in flight carries, oldest first. */
  private readonly notifies = new IntQueue();
  private readonly notifyKind: number;
  private readonly withdrawn: number[] = [];
  /**
   * Request latency: from a page's first request to its placement, as QEMU's trace of the pages
   * it asked for measures it (`postcopy_page_req_add` when the fault thread first asks for a page
   * not received, `postcopy_page_req_del` at its `UFFDIO_COPY`). Pages asked for singly: a range
   * request waits as one (the fault latency has it).
   */
  readonly latency: LatencyLog;
  /** Stats. */
  pfnsRequested = 0;
  faultRecords = 0;

  constructor(
    private readonly kernel: Kernel,
    private readonly memory: GuestMemory,
    private readonly ring: FaultRing,
    private readonly notifyNs: number,
    private readonly host: PagerHost,
    alloc: Alloc,
    /** QEMU's blocktime, with its fault thread: it reads the vCPUs' faults through book(). */
    private readonly blocktime: QemuBlocktime | null = null,
    /** Guest pages per host page: the source is asked for whole host pages. */
    private readonly perHostPage = 1,
  ) {
    this.waiters = new Waiters(memory.pages, alloc);
    this.faultPfns = new PfnSlab(alloc);
    this.faultRanges = new PfnSlab(alloc);
    this.remaining = new Int32Array(ring.capacity);
    this.askedAt = new Float64Array(ring.capacity);
    this.latency = new LatencyLog(alloc);
    this.notifyKind = kernel.register(() => this.consume());
  }

  /** Waits not released yet: one per page of each request. */
  get live(): number {
    return this.waiters.live;
  }

  /** Whether a request waits for gfn. */
  waitedOn(gfn: number): boolean {
    return this.waiters.waitedOn(gfn);
  }

  /** Whether the next FAULT record has anything in it. */
  get faultPending(): boolean {
    return this.faultPfns.pending > 0 || this.faultRanges.pending > 0;
  }

  /**
   * Request `id` waits for its missing pages; they go into the FAULT slabs when newly requested,
   * or with `again` whenever missing (QEMU's `migrate_send_rp_req_pages` skips only pages in the
   * receivedmap, not pages already requested). Returns the page a one-page wait was booked on,
   * or −1.
   */
  book(id: number, again: boolean): number {
    const ring = this.ring, mem = this.memory;
    const kind = ring.kindOf(id), gfn = ring.gfnOf(id);
    if (id >= this.remaining.length) this.widen();
    this.remaining[id] = 0;
    this.askedAt[id] = -1;
    if (kind === RequestKind.DROP) {
      // A settled page has no waits left: it released them when it settled.
      if (!mem.isSettled(gfn)) {
        mem.drop(gfn);
        this.host.settled(gfn);
        this.waiters.release(gfn, this);
      }
      this.respond(id);
      return -1;
    }
    const count = kind === RequestKind.RANGE ? ring.countOf(id) : 1;
    const end = gfn + count;
    let waitedOn = -1;
    // The request waits on each page of it not settled (ready or dropped) yet...
    const waits = kind === RequestKind.RANGE ? mem.pendingIn(gfn, end) : mem.isSettled(gfn) ? 0 : 1;
    if (waits > 0) {
      if (kind === RequestKind.RANGE) this.waiters.addRange(gfn, end, id, waits);
      else {
        this.waiters.add(gfn, id);
        waitedOn = gfn;
      }
    }
    this.remaining[id] = waits;
    if (waits > 0) this.blocktime?.begin(ring.producerOf(id), this.kernel.now);
    // ...and goes to the source if it holds a page not requested before (or `again`, any it waits on).
    const askAgain = again && waits > 0;
    if (this.perHostPage > 1) this.askWhole(id, kind, gfn, end, askAgain);
    else this.ask(id, kind, gfn, end, kind === RequestKind.RANGE ? mem.markRequestedRange(gfn, end) : mem.markRequested(gfn) ? 1 : 0, askAgain);
    if (waits === 0) this.respond(id);
    return waitedOn;
  }

  /** Request `id` asks the source for from..to−1, of which `fresh` pages for the first time. */
  private ask(id: number, kind: RequestKind, from: number, to: number, fresh: number, again: boolean): void {
    this.pfnsRequested += fresh;
    // The request that asks for a page first waits on it until it settles, like every later one.
    if (fresh > 0 && kind === RequestKind.PAGE) this.askedAt[id] = this.kernel.now;
    if (fresh === 0 && !again) return;
    if (kind === RequestKind.PAGE && to - from === 1) this.faultPfns.push(from);
    else {
      this.faultRanges.push(from);
      this.faultRanges.push(to - from);
    }
  }

  /**
   * ask() on huge host pages: for the whole host pages gfn..end−1 lies in, whoever faulted (a
   * vCPU's request is one already, the mapper's and a device's are not). userfaultfd places a host
   * page whole, and QEMU's fault thread asks for the host page a fault lies in
   * (`postcopy_request_page`); a piece nobody asked for kept its page from completing, for ever
   * under a pull-driven source (soak seed 807409).
   */
  private askWhole(id: number, kind: RequestKind, gfn: number, end: number, again: boolean): void {
    const per = this.perHostPage, from = gfn - (gfn % per), to = Math.min(this.memory.pages, Math.ceil(end / per) * per);
    this.ask(id, kind, from, to, this.memory.markRequestedRange(from, to), again);
  }

  /** Page g settled: answers whoever waits for it; with `queued`, its unread faults too. */
  placed(g: number, queued: boolean): void {
    this.waiters.release(g, this);
    if (queued && this.ring.queued > 0) this.answerQueued(g, g + 1);
  }

  /** placed() for each page of from..to−1. */
  placedRange(from: number, to: number, queued: boolean): void {
    this.waiters.releaseRange(from, to, this);
    if (queued && this.ring.queued > 0) this.answerQueued(from, to);
  }

  /** UFFDIO_COPY of from..to−1 wakes the vCPUs faulting there whose faults are still unread. */
  private answerQueued(from: number, to: number): void {
    const ids = this.withdrawn;
    ids.length = 0;
    this.ring.withdraw(from, to, ids);
    for (const id of ids) this.respond(id);
  }

  /** `pages` of the pages request `id` waits for arrived (Waiters.release): placed, or dropped. */
  arrived(id: number, pages: number): void {
    const asked = this.askedAt[id]!;
    if (asked >= 0 && this.memory.state[this.ring.gfnOf(id)] === PageState.READY) this.latency.add(this.kernel.now - asked);
    const left = this.remaining[id]! - pages;
    this.remaining[id] = left;
    if (left > 0) return;
    this.blocktime?.end(this.ring.producerOf(id), this.kernel.now);
    this.respond(id);
  }

  private respond(id: number): void {
    this.responses.push(id);
    this.unflushed++;
  }

  /** An unbounded ring grew: room for its new request ids. */
  private widen(): void {
    const r = new Int32Array(this.ring.capacity);
    r.set(this.remaining);
    this.remaining = r;
    const a = new Float64Array(this.ring.capacity);
    a.set(this.askedAt);
    this.askedAt = a;
  }

  /** Sends the FAULT slabs' pending pfns and ranges as one back-channel record, if any. */
  send(type: RecordType.POSTCOPY_FAULT | RecordType.REQ_PAGES): void {
    const fp = this.faultPfns, fr = this.faultRanges;
    const pfnCount = fp.pending, rangeCount = fr.pending / 2;
    if (pfnCount === 0 && rangeCount === 0) return;
    this.faultRecords++;
    const pfnAt = fp.take(), rangeAt = fr.take();
    this.host.sendBack({ type, pfns: fp.data, pfnAt, pfnCount, ranges: fr.data, rangeAt, rangeCount });
  }

  /** A resumed source: one FAULT record asks again for every page still requested; returns how many. */
  askAgain(): number {
    const mem = this.memory, pfns: number[] = [];
    for (let g = 0; g < mem.pages; g++) if (mem.state[g] === PageState.REQUESTED) pfns.push(g);
    if (pfns.length > 0) {
      this.faultRecords++;
      this.host.sendBack({ type: RecordType.POSTCOPY_FAULT, pfns: Int32Array.from(pfns), pfnAt: 0, pfnCount: pfns.length, ranges: NO_PFNS, rangeAt: 0, rangeCount: 0 });
    }
    return pfns.length;
  }

  /** Puts the responses of this job on the ring and notifies once. */
  flush(): void {
    if (this.unflushed === 0) return;
    this.notifies.push(this.unflushed);
    this.unflushed = 0;
    this.kernel.after(this.notifyNs, this.notifyKind);
  }

  /** Xen's vm_event_resume: consumes the responses, frees their slots, then wakes waiters. */
  private consume(): void {
    for (let n = this.notifies.shift(); n > 0; n--) {
      const id = this.responses.shift();
      this.host.answered(id);
      this.ring.respond(id);
    }
    this.host.slotsFreed();
  }
}
