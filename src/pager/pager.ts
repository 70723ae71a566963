import { IntQueue } from '../kernel/int-queue.ts';
import { InFlight } from '../link/in-flight.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { FRESH, type Alloc } from '../memory/arena.ts';
import { PageState, type GuestMemory } from '../memory/guest-memory.ts';
import { FaultRing, RequestKind } from '../ring/ring.ts';
import { faultThreadOf, placementOf, wakeAtOf, type Scenario } from '../scenario/schema.ts';
import { RecordType, type BackRecord, type StreamRecord } from '../stream/records.ts';
import { PfnSlab } from '../stream/slab.ts';
import { HostPages } from './host-pages.ts';
import { Placement, PlacementFront } from './placement.ts';
import { receivedMap } from './received-map.ts';
import { Waiters, type WaitTarget } from './waiters.ts';

/** What the pager needs from the rest of the destination. */
export interface PagerHost {
  /** The pager read a stream record from its socket. */
  consumed(record: StreamRecord): void;
  /** Writes a record to the back-channel now. */
  sendBack(record: BackRecord): void;
  /** A page was loaded (guest-accessible now) or dropped. */
  settled(gfn: number): void;
  /** settled() for each page of from..to−1, all loaded. */
  settledRange(from: number, to: number): void;
  /** A PAGE_DATA record's pfns were read for the last time: their slab may reuse them. */
  pfnsRead(record: StreamRecord): void;
  /** Xen consumed the response to ring request `id` (its slot is about to be freed). */
  answered(id: number): void;
  /** The responses of a notify were consumed: time to wake ring waiters. */
  slotsFreed(): void;
  /** POSTCOPY_TRANSITION was processed: the domain build (device model) continues. */
  transition(): void;
}

const NONE = new Int32Array(0);

function control(type: RecordType.POSTCOPY_COMPLETE | RecordType.LAZY_XFER_NEXT): BackRecord {
  return { type, pfns: NONE, pfnAt: 0, pfnCount: 0, ranges: NONE, rangeAt: 0, rangeCount: 0 };
}

const enum Job {
  WAKE,
  RECORD,
  DRAIN,
}

/**
 * The destination pager: the RFC's single-threaded loop. It handles incoming stream records
 * first and drains the ring only when none is waiting: in `postcopy_restore` an iteration that
 * loaded a record skips the ring (`rc && pfds[0].revents & POLLIN`, rc just set to 0 by the
 * load), so a pager slower than the wire leaves faults on the ring until the backlog is gone.
 * One FAULT record per drain carries the newly requested pfns.
 * A loaded page answers every request waiting on it; responses are notified once per record
 * (pager.wakeAt page: when a waited-for page lands).
 * With `pager.faultThread` (QEMU) a second thread takes the faults instead and requests each
 * at once (`postcopy_ram_fault_thread`), while this loop only loads.
 */
export class Pager implements WaitTarget {
  private readonly params: Scenario['pager'];
  private readonly waiters: Waiters;
  /** Huge host pages, placed whole; null for 4 KiB host pages. */
  private readonly hostPages: HostPages | null;
  private readonly placement: Placement;
  private remaining: Int32Array;
  /** Main-stream records read from the socket and not handled yet, oldest first. */
  private readonly inbox = new InFlight<StreamRecord>();
  /** The preempt channel's records: QEMU loads them on a thread of their own, so they go first. */
  private readonly preemptInbox = new InFlight<StreamRecord>();
  private busy = false;
  private job = Job.WAKE;
  private record: StreamRecord | null = null;
  /** The next FAULT record's pfns and [start, count] ranges: the slabs' pending entries. */
  private readonly faultPfns: PfnSlab;
  private readonly faultRanges: PfnSlab;
  /** Answered request ids in notify order; the last `unflushed` are this job's. */
  private readonly responses = new IntQueue();
  private unflushed = 0;
  /** How many responses each notify in flight carries, oldest first. */
  private readonly notifies = new IntQueue();
  private readonly doneKind: number;
  private readonly notifyKind: number;
  private transitioned = false;
  /** lazy-pages: the daemon pulls each background chunk; one is asked for and not yet loaded. */
  private readonly pullsChunks: boolean;
  private chunkPending = true;
  /** QEMU's fault thread: on, busy, and writing a request (the slabs hold it). */
  private readonly faultThread: boolean;
  private faultBusy = false;
  private faultWriting = false;
  private readonly faultKind: number;
  /** pager.wakeAt page (4 KiB host pages): a record's pages become present one by one. */
  private readonly pageWise: boolean;
  private readonly placeDueKind: number;
  private readonly front = new PlacementFront();
  /** uffd placement: a placed page wakes the faults on it no thread has read yet (answerQueued). */
  private readonly wakesQueued: boolean;
  private readonly withdrawn: number[] = [];
  completeSent = false;
  /** Stats. */
  pagesLoaded = 0;
  pagesDiscarded = 0;
  pfnsRequested = 0;
  faultRecords = 0;
  /** Doubles from the start: see Kernel.now. */
  evictionNs = NaN;
  busyNs = NaN;
  /** When the job in progress (or the last one) ends, and whether it evicts. */
  private jobEndsAt = NaN;
  private jobEvicts = false;

  constructor(
    private readonly kernel: Kernel,
    private readonly memory: GuestMemory,
    private readonly ring: FaultRing,
    scenario: Scenario,
    private readonly host: PagerHost,
    alloc: Alloc = FRESH,
  ) {
    this.evictionNs = this.busyNs = this.jobEndsAt = 0;
    this.params = scenario.pager;
    this.pullsChunks = scenario.source.policy === 'lazy-pages';
    this.waiters = new Waiters(memory.pages, alloc);
    this.faultPfns = new PfnSlab(alloc);
    this.faultRanges = new PfnSlab(alloc);
    const perHost = (scenario.memory.hostPageSize ?? scenario.memory.pageSize) / scenario.memory.pageSize;
    this.hostPages = perHost > 1 ? new HostPages(memory, perHost, alloc) : null;
    this.placement = new Placement(scenario, this.hostPages);
    this.remaining = new Int32Array(ring.capacity);
    this.doneKind = kernel.register(() => this.jobDone());
    this.notifyKind = kernel.register(() => this.consumeResponses());
    this.faultThread = faultThreadOf(scenario);
    this.faultKind = kernel.register(() => this.faultStep());
    this.pageWise = wakeAtOf(scenario) === 'page' && this.hostPages === null;
    this.placeDueKind = kernel.register(() => this.placeDue());
    this.wakesQueued = placementOf(scenario) === 'uffd';
  }

  /** A stream record arrived from the source. */
  receive(record: StreamRecord): void {
    (record.preempt ? this.preemptInbox : this.inbox).push(record);
    this.wake();
  }

  /** The ring's event channel fired (with a fault thread: the uffd became readable). */
  kick(): void {
    if (!this.faultThread) this.wake();
    else if (!this.faultBusy) {
      // The fault thread sleeps in poll() on the uffd: a wake-up, then it reads.
      this.faultBusy = true;
      this.kernel.after(this.params.wakeNs, this.faultKind);
    }
  }

  get idle(): boolean {
    return !this.busy;
  }

  /** Requests taken from the ring and not answered yet. */
  get waiting(): number {
    return this.waiters.live;
  }

  private wake(): void {
    if (this.busy) return;
    this.busy = true;
    this.job = Job.WAKE;
    this.kernel.after(this.params.wakeNs, this.doneKind);
  }

  private startNext(): void {
    const p = this.params, evicted = this.evictionNs;
    let cost: number;
    const box = this.preemptInbox.length > 0 ? this.preemptInbox : this.inbox;
    if (box.length > 0) {
      const rec = box.shift();
      this.record = rec;
      this.job = Job.RECORD;
      this.host.consumed(rec);
      cost = this.recordCost(rec);
      if (this.pageWise && rec.type === RecordType.POSTCOPY_PAGE_DATA) this.startPageWise(rec, cost);
    } else if (!this.faultThread && this.ring.queued > 0) {
      this.job = Job.DRAIN;
      cost = this.drain() * p.drainPerRequestNs;
      if (this.faultPfns.pending > 0 || this.faultRanges.pending > 0) cost += p.faultRecordNs;
    } else {
      this.busy = false;
      return;
    }
    this.busyNs += cost;
    this.jobEndsAt = this.kernel.now + cost;
    this.jobEvicts = this.job === Job.RECORD && this.evictionNs !== evicted;
    this.kernel.after(cost, this.doneKind);
  }

  /**
   * busyNs up to `now`: a job a run was cut in the middle of (the horizon, a bound, stopAt:
   * resume) counts its part so far. Its whole cost was added when it started, which made a cut
   * run's pager busier than the time simulated.
   */
  busyUpTo(now: number): number {
    return this.busyNs - Math.max(0, this.jobEndsAt - now);
  }

  /** evictionNs up to `now`, as busyUpTo. */
  evictionUpTo(now: number): number {
    return this.evictionNs - (this.jobEvicts ? Math.max(0, this.jobEndsAt - now) : 0);
  }

  private recordCost(rec: StreamRecord): number {
    const p = this.params;
    switch (rec.type) {
      case RecordType.POSTCOPY_PFNS: {
        // Eviction at the transition: v1 nominates + evicts per pfn; v2 batches populate_evicted.
        const n = rec.count;
        const cost = p.eviction === 'per-pfn'
          ? n * p.evictPerPfnNs
          : Math.ceil(n / p.evictBatchPages) * p.evictBatchCallNs + n * p.evictBatchPerPageNs;
        this.evictionNs += cost;
        return cost;
      }
      case RecordType.POSTCOPY_RAM_DISCARD: {
        // madvise(DONTNEED) per range (`ram_discard_range`); only pages held cost (count).
        const cost = rec.pushed * p.discardRangeNs + rec.count * p.discardPageNs;
        this.evictionNs += cost;
        return cost;
      }
      case RecordType.POSTCOPY_PAGE_DATA:
        return this.placement.cost(rec);
      default:
        return 0;
    }
  }

  private jobDone(): void {
    if (this.job === Job.RECORD) this.finishRecord(this.record!);
    else if (this.job === Job.DRAIN) this.finishDrain();
    this.record = null;
    this.flushResponses();
    this.startNext();
  }

  private finishRecord(rec: StreamRecord): void {
    if (rec.type === RecordType.POSTCOPY_TRANSITION) {
      this.transitioned = true;
      this.host.transition();
    } else if (rec.type === RecordType.POSTCOPY_PAGE_DATA) {
      const pfns = rec.pfns!, huge = this.hostPages;
      // Page-wise, the first pages are in already.
      const skip = this.front.end();
      // A background scan's record is one run: placed without looking at each pfn.
      if (huge === null && rec.run) this.placeRun(pfns[rec.at]! + skip, pfns[rec.at]! + rec.count);
      else for (let i = rec.at + skip, end = rec.at + rec.count; i < end; i++) {
        const g = pfns[i]!;
        if (huge === null) {
          // Consecutive pfns (a background scan's) are placed as one run.
          let n = 1;
          while (i + n < end && pfns[i + n] === g + n) n++;
          this.placeRun(g, g + n);
          i += n - 1;
        } else {
          // A huge page waits for its last piece, then is placed whole.
          const first = huge.arrive(g);
          if (first >= 0) for (let p = first, end = huge.end(first); p < end; p++) if (!this.memory.isSettled(p)) this.place(p);
        }
      }
      if (this.pullsChunks) this.pullNext(rec);
      this.host.pfnsRead(rec);
    }
    this.maybeComplete();
  }

  /**
   * pager.wakeAt page: each page of the record is present when the listen thread reaches it
   * (PlacementFront), applied when someone looks (placeDue): a vCPU's slice, a fault being read,
   * the received map; a page someone waits for gets an event at its time.
   */
  private startPageWise(rec: StreamRecord, cost: number): void {
    const front = this.front;
    front.begin(this.kernel.now, cost, rec.count);
    if (this.waiters.live === 0) return;
    const pfns = rec.pfns!;
    for (let i = 0; i < rec.count - 1; i++) if (this.waiters.waitedOn(pfns[rec.at + i]!)) this.placeDueAt(i);
  }

  /** Places the pages of the record in progress that the thread has reached by now (page-wise). */
  placeDue(): void {
    const front = this.front;
    if (this.kernel.now < front.nextAt) return;
    const rec = this.record!, pfns = rec.pfns!, to = front.dueBy(this.kernel.now);
    for (let i = front.placed; i < to; i++) this.place(pfns[rec.at + i]!);
    front.advance(to);
    this.flushResponses();
  }

  /**
   * A vCPU faulted on gfn: if the record in progress holds it, its UFFDIO_COPY will wake the vCPU
   * even before the fault thread reads the fault (answerQueued), so an event at its time.
   */
  faulted(gfn: number): void {
    if (this.front.nextAt !== Infinity) this.wakeWhenPlaced(gfn);
  }

  /** A one-page wait booked on gfn while the record in progress holds it: an event at its time (page-wise). */
  private wakeWhenPlaced(gfn: number): void {
    const rec = this.record!, pfns = rec.pfns!, front = this.front;
    for (let i = front.placed; i < rec.count - 1; i++) {
      if (pfns[rec.at + i] === gfn) return this.placeDueAt(i);
    }
  }

  /** An event when page i of the record in progress lands (page-wise). */
  private placeDueAt(i: number): void {
    this.kernel.at(this.front.timeOf(i), this.placeDueKind);
  }

  /** Makes a page accessible and answers whoever waits for it. */
  private place(g: number): void {
    if (!this.memory.load(g)) {
      this.pagesDiscarded++;
      return;
    }
    this.pagesLoaded++;
    this.host.settled(g);
    this.waiters.release(g, this);
    if (this.wakesQueued && this.ring.queued > 0) this.answerQueued(g, g + 1);
  }

  /** UFFDIO_COPY of from..to−1 wakes the vCPUs faulting there whose faults are still unread. */
  private answerQueued(from: number, to: number): void {
    const ids = this.withdrawn;
    ids.length = 0;
    this.ring.withdraw(from, to, ids);
    for (const id of ids) this.respond(id);
  }

  /** place() for each page of from..to−1. */
  private placeRun(from: number, to: number): void {
    if (to - from > 1 && this.memory.loadRun(from, to)) {
      this.pagesLoaded += to - from;
      this.host.settledRange(from, to);
      this.waiters.releaseRange(from, to, this);
      if (this.wakesQueued && this.ring.queued > 0) this.answerQueued(from, to);
    } else for (let g = from; g < to; g++) this.place(g);
  }

  /** CRIU's `handle_requests`: the next chunk is asked for once every request is answered. */
  private pullNext(rec: StreamRecord): void {
    if (rec.pushed > 0) this.chunkPending = false;
    if (this.chunkPending || this.waiters.live > 0 || this.memory.pending === 0) return;
    this.chunkPending = true;
    this.host.sendBack(control(RecordType.LAZY_XFER_NEXT));
  }

  private maybeComplete(): void {
    if (this.transitioned && !this.completeSent && this.memory.pending === 0) {
      this.completeSent = true;
      this.host.sendBack(control(RecordType.POSTCOPY_COMPLETE));
    }
  }

  /** `pages` of the pages request `id` waits for arrived (Waiters.release). */
  arrived(id: number, pages: number): void {
    const left = this.remaining[id]! - pages;
    this.remaining[id] = left;
    if (left === 0) this.respond(id);
  }

  private respond(id: number): void {
    this.responses.push(id);
    this.unflushed++;
  }

  /** Takes every queued request (the RFC's drain); returns how many were taken. */
  private drain(): number {
    let n = 0;
    for (let id = this.ring.take(); id >= 0; id = this.ring.take()) {
      n++;
      this.book(id, false);
    }
    return n;
  }

  /**
   * Request `id` waits for its missing pages; they go into the FAULT slabs when newly requested,
   * or with `again` whenever missing (QEMU's `migrate_send_rp_req_pages` skips only pages in the
   * receivedmap, not pages already requested).
   */
  private book(id: number, again: boolean): void {
    this.placeDue();
    const ring = this.ring, mem = this.memory;
    const kind = ring.kindOf(id), gfn = ring.gfnOf(id);
    if (id >= this.remaining.length) this.widenRemaining();
    this.remaining[id] = 0;
    if (kind === RequestKind.DROP) {
      // A settled page has no waits left: it released them when it settled.
      if (!mem.isSettled(gfn)) {
        mem.drop(gfn);
        this.host.settled(gfn);
        this.waiters.release(gfn, this);
      }
      this.respond(id);
      return;
    }
    const count = kind === RequestKind.RANGE ? ring.countOf(id) : 1;
    const end = gfn + count;
    // The request waits on each page of it not settled (ready or dropped) yet...
    const waits = kind === RequestKind.RANGE ? mem.pendingIn(gfn, end) : mem.isSettled(gfn) ? 0 : 1;
    if (waits > 0) {
      if (kind === RequestKind.RANGE) this.waiters.addRange(gfn, end, id, waits);
      else {
        this.waiters.add(gfn, id);
        if (this.front.nextAt !== Infinity) this.wakeWhenPlaced(gfn);
      }
    }
    this.remaining[id] = waits;
    // ...and goes to the source if it holds a page not requested before (or `again`, any it waits on).
    const fresh = kind === RequestKind.RANGE ? mem.markRequestedRange(gfn, end) : mem.markRequested(gfn) ? 1 : 0;
    this.pfnsRequested += fresh;
    if (fresh > 0 || (again && waits > 0)) {
      if (kind === RequestKind.PAGE) this.faultPfns.push(gfn);
      else {
        this.faultRanges.push(gfn);
        this.faultRanges.push(count);
      }
    }
    if (waits === 0) this.respond(id);
  }

  /**
   * QEMU's `postcopy_ram_fault_thread`: reads one fault, and unless its page is received sends a
   * REQ_PAGES for it at once (`migrate_send_rp_req_pages`), independent of the loading loop.
   * Each costs a read of the uffd_msg and, when sent, a write on the return path.
   */
  private faultStep(): void {
    const p = this.params;
    if (this.faultWriting) this.sendFault(RecordType.REQ_PAGES);
    this.faultWriting = false;
    const id = this.ring.take();
    if (id < 0) {
      this.faultBusy = false;
      return;
    }
    this.book(id, true);
    this.flushResponses(); // a page placed since the fault: UFFDIO_COPY already woke the vCPU
    this.faultWriting = this.faultPfns.pending > 0 || this.faultRanges.pending > 0;
    this.kernel.after(p.drainPerRequestNs + (this.faultWriting ? p.faultRecordNs : 0), this.faultKind);
  }

  /** An unbounded ring grew: room for its new request ids. */
  private widenRemaining(): void {
    const r = new Int32Array(this.ring.capacity);
    r.set(this.remaining);
    this.remaining = r;
  }

  private finishDrain(): void {
    this.maybeComplete();
    this.sendFault(RecordType.POSTCOPY_FAULT);
  }

  /** Sends the FAULT slabs' pending pfns and ranges as one back-channel record, if any. */
  private sendFault(type: RecordType.POSTCOPY_FAULT | RecordType.REQ_PAGES): void {
    const fp = this.faultPfns, fr = this.faultRanges;
    const pfnCount = fp.pending, rangeCount = fr.pending / 2;
    if (pfnCount === 0 && rangeCount === 0) return;
    this.faultRecords++;
    const pfnAt = fp.take(), rangeAt = fr.take();
    this.host.sendBack({ type, pfns: fp.data, pfnAt, pfnCount, ranges: fr.data, rangeAt, rangeCount });
  }

  /** Puts the responses of this job on the ring and notifies once. */
  private flushResponses(): void {
    if (this.unflushed === 0) return;
    this.notifies.push(this.unflushed);
    this.unflushed = 0;
    this.kernel.after(this.params.notifyNs, this.notifyKind);
  }

  /** Recovery's RECV_BITMAP (received-map.ts). */
  receivedMap(): Uint8Array {
    this.placeDue();
    this.hostPages?.dropPieces();
    return receivedMap(this.memory, this.record, [this.inbox, this.preemptInbox]);
  }

  /**
   * The source resumed: FAULT and COMPLETE records written while the connection was down were
   * lost, so ask again for every page still requested and say COMPLETE again if nothing is
   * pending. Returns the pages asked for again.
   */
  resend(): number {
    const mem = this.memory, pfns: number[] = [];
    this.chunkPending = true; // the resumed source sends a chunk unasked
    for (let g = 0; g < mem.pages; g++) if (mem.state[g] === PageState.REQUESTED) pfns.push(g);
    if (pfns.length > 0) {
      this.faultRecords++;
      this.host.sendBack({ type: RecordType.POSTCOPY_FAULT, pfns: Int32Array.from(pfns), pfnAt: 0, pfnCount: pfns.length, ranges: NONE, rangeAt: 0, rangeCount: 0 });
    }
    if (this.transitioned && mem.pending === 0) {
      this.completeSent = true;
      this.host.sendBack(control(RecordType.POSTCOPY_COMPLETE));
    }
    return pfns.length;
  }

  /** Xen's vm_event_resume: consumes the responses, frees their slots, then wakes waiters. */
  private consumeResponses(): void {
    for (let n = this.notifies.shift(); n > 0; n--) {
      const id = this.responses.shift();
      this.host.answered(id);
      this.ring.respond(id);
    }
    this.host.slotsFreed();
  }
}
