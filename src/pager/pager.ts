import { checkWiring } from '../io/wiring.ts';
import { InFlight } from '../link/in-flight.ts';
import { QemuBlocktime } from '../metrics/blocktime.ts';
import type { LatencyLog } from '../metrics/latency.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { FRESH, type Alloc } from '../memory/arena.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { FaultRing } from '../ring/ring.ts';
import { drainPerRequestNsOf, faultThreadOf, notifyNsOf, placementOf, wakeAtOf, type Scenario } from '../scenario/schema.ts';
import { NO_PFNS, RecordType, pfnOf, type BackRecord, type StreamRecord } from '../stream/records.ts';
import { FaultThread } from './fault-thread.ts';
import { HostPages } from './host-pages.ts';
import { PageWiseLoad } from './page-wise.ts';
import { Placement, cutAt } from './placement.ts';
import { PreemptLoader, type PreemptHost } from './preempt-loader.ts';
import { receivedMap } from './received-map.ts';
import { Requests } from './requests.ts';

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
  /** Whether a vCPU spins on gfn, waiting only for it to be present (Xen's paging-in page). */
  spinsOn(gfn: number): boolean;
  /** Whether any vCPU spins. */
  spinning(): boolean;
}

function control(type: RecordType.POSTCOPY_COMPLETE | RecordType.LAZY_XFER_NEXT): BackRecord {
  return { type, pfns: NO_PFNS, pfnAt: 0, pfnCount: 0, ranges: NO_PFNS, rangeAt: 0, rangeCount: 0 };
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
 * at once (`postcopy_ram_fault_thread`), while this loop only loads; with the preempt channel a
 * third loads that channel's records (PreemptLoader).
 */
export class Pager implements PreemptHost {
  private readonly params: Scenario['pager'];
  private readonly requests: Requests;
  /** Huge host pages, placed whole; null for 4 KiB host pages. */
  private readonly hostPages: HostPages | null;
  private readonly placement: Placement;
  /** Main-stream records read from the socket and not handled yet, oldest first. */
  private readonly inbox = new InFlight<StreamRecord>();
  /** The preempt channel's loader (QEMU's preempt thread), with `preempt.enabled`. */
  private readonly preempt: PreemptLoader | null;
  private busy = false;
  private job = Job.WAKE;
  private record: StreamRecord | null = null;
  private readonly doneKind: number;
  /** Taking one request: pager.drainPerRequestNs, unset following the placement. */
  private readonly drainNs: number;
  private transitioned = false;
  /** lazy-pages: the daemon pulls each background chunk; one is asked for and not yet loaded. */
  private readonly pullsChunks: boolean;
  private chunkPending = true;
  /** QEMU's fault thread, with pager.faultThread, and the blocktime it keeps. */
  private readonly faultThread: FaultThread | null;
  readonly blocktime: QemuBlocktime | null;
  /**
   * 4 KiB host pages placed by the hypercall or with pager.wakeAt page: a record's pages become
   * present one by one; the responses go with each page (wakeAt page) or with the record.
   */
  private readonly pageWise: boolean;
  /**
   * QEMU's listen thread reads a PAGE_DATA record page by page as its bytes come
   * (`ram_load_postcopy` reads each page's header and data from the QEMUFile and places it):
   * userfaultfd placement page-wise. Xen's `read_record` reads a whole record first.
   */
  readonly readsAsItComes: boolean;
  /** The record being placed page-wise. */
  private readonly inProgress: PageWiseLoad;
  /** uffd placement: a placed page wakes the faults on it no thread has read yet (answerQueued). */
  private readonly wakesQueued: boolean;
  completeSent = false;
  /** Stats. */
  pagesLoaded = 0;
  pagesDiscarded = 0;
  /** Doubles from the start: see Kernel.now. */
  evictionNs = NaN;
  busyNs = NaN;
  /** When the job in progress (or the last one) ends, its cost, and whether it evicts. */
  private jobEndsAt = NaN;
  private jobCost = NaN;
  private jobEvicts = false;

  constructor(
    private readonly kernel: Kernel,
    private readonly memory: GuestMemory,
    private readonly ring: FaultRing,
    scenario: Scenario,
    private readonly host: PagerHost,
    alloc: Alloc = FRESH,
  ) {
    checkWiring('Pager', kernel, memory, scenario, host, ['ring', ring, FaultRing, 'the FaultRing it drains']);
    this.evictionNs = this.busyNs = this.jobEndsAt = this.jobCost = 0;
    this.params = scenario.pager;
    this.pullsChunks = scenario.source.policy === 'lazy-pages';
    const perHost = (scenario.memory.hostPageSize ?? scenario.memory.pageSize) / scenario.memory.pageSize;
    this.hostPages = perHost > 1 ? new HostPages(memory, perHost, alloc) : null;
    this.placement = new Placement(scenario, this.hostPages, memory.outstandingAtStart > 0);
    this.doneKind = kernel.register(() => this.jobDone());
    const faultThread = faultThreadOf(scenario);
    this.blocktime = faultThread ? new QemuBlocktime(scenario.workload.vcpus, alloc) : null;
    this.requests = new Requests(kernel, memory, ring, notifyNsOf(scenario), host, alloc, this.blocktime, perHost);
    this.preempt = scenario.preempt.enabled ? new PreemptLoader(kernel, this.params.wakeNs, this) : null;
    this.drainNs = drainPerRequestNsOf(scenario);
    this.faultThread = faultThread
      ? new FaultThread(kernel, ring, this.requests, this.params.wakeNs, this.drainNs, this.params.faultRecordNs, (id) => this.book(id, true))
      : null;
    const wakesPerPage = wakeAtOf(scenario) === 'page';
    this.wakesQueued = placementOf(scenario) === 'uffd';
    // Xen's p2m_mem_paging_prep makes each page present as it is loaded (process_postcopy_page_data
    // pushes the responses after the record); CRIU's one UFFDIO_COPY a chunk places it whole.
    this.pageWise = (wakesPerPage || !this.wakesQueued) && this.hostPages === null;
    this.readsAsItComes = this.pageWise && this.wakesQueued;
    this.inProgress = new PageWiseLoad(kernel, wakesPerPage, this.requests, host, (g) => this.place(g));
  }

  /** A stream record arrived from the source. */
  receive(record: StreamRecord): void {
    if (record.preempt) this.preempt!.receive(record);
    else {
      record.firstAt = this.kernel.now;
      this.inbox.push(record);
      this.wake();
    }
  }

  /** PreemptHost: the preempt thread read a record. */
  consumed(rec: StreamRecord): void {
    this.host.consumed(rec);
  }

  /** PreemptHost: placing a record costs the preempt thread what it costs the main loader. */
  cost(rec: StreamRecord): number {
    return this.recordCost(rec);
  }

  /** PreemptHost: the preempt thread placed a record's pages. */
  loaded(rec: StreamRecord): void {
    this.finishRecord(rec, 0);
    this.requests.flush();
  }

  /** The ring's event channel fired (with a fault thread: the uffd became readable). */
  kick(): void {
    if (this.faultThread === null) this.wake();
    else this.faultThread.kick();
  }

  get idle(): boolean {
    return !this.busy;
  }

  /** Requests taken from the ring and not answered yet. */
  get waiting(): number {
    return this.requests.live;
  }

  /** pfns asked of the source for the first time, and FAULT (REQ_PAGES) records sent. */
  get pfnsRequested(): number {
    return this.requests.pfnsRequested;
  }

  get faultRecords(): number {
    return this.requests.faultRecords;
  }

  /** From each page's first request to its placement (Requests.latency). */
  get requestLatency(): LatencyLog {
    return this.requests.latency;
  }

  private wake(): void {
    if (this.busy) return;
    this.busy = true;
    this.job = Job.WAKE;
    this.kernel.after(this.params.wakeNs, this.doneKind);
  }

  private startNext(): void {
    const p = this.params, evicted = this.evictionNs;
    let cost: number, ends = -1;
    if (this.inbox.length > 0) {
      const rec = this.inbox.shift();
      this.record = rec;
      this.job = Job.RECORD;
      this.host.consumed(rec);
      cost = this.recordCost(rec);
      if (this.pageWise && rec.type === RecordType.POSTCOPY_PAGE_DATA) this.inProgress.begin(rec, cost);
      // Read as it comes: the thread may wait in recv() for the record's last page.
      if (rec.gapNs > 0) ends = this.inProgress.front.endAt;
    } else if (this.faultThread === null && this.ring.queued > 0) {
      this.job = Job.DRAIN;
      cost = this.drain() * this.drainNs;
      if (this.requests.faultPending) cost += p.faultRecordNs;
    } else {
      this.busy = false;
      return;
    }
    this.busyNs += cost;
    this.jobCost = cost;
    this.jobEvicts = this.job === Job.RECORD && this.evictionNs !== evicted;
    if (ends < 0) {
      this.jobEndsAt = this.kernel.now + cost;
      this.kernel.after(cost, this.doneKind);
    } else {
      this.jobEndsAt = ends;
      this.kernel.at(ends, this.doneKind);
    }
  }

  /**
   * busyNs up to `now`: a job a run was cut in the middle of (the horizon, a bound, stopAt:
   * resume) counts its part so far. Its whole cost was added when it started, which made a cut
   * run's pager busier than the time simulated.
   */
  busyUpTo(now: number): number {
    return this.busyNs - this.jobLeft(now);
  }

  /** evictionNs up to `now`, as busyUpTo. */
  evictionUpTo(now: number): number {
    return this.evictionNs - (this.jobEvicts ? this.jobLeft(now) : 0);
  }

  /** The cost of the job in progress not spent by `now` (a record read as it comes spends it by its end at the latest). */
  private jobLeft(now: number): number {
    return Math.max(0, Math.min(this.jobCost, this.jobEndsAt - now));
  }

  private recordCost(rec: StreamRecord): number {
    if (rec.type === RecordType.POSTCOPY_PAGE_DATA) return this.placement.cost(rec);
    if (rec.type === RecordType.POSTCOPY_TRANSITION) return this.placement.transitionCost();
    const cost = this.placement.evictionCost(rec);
    this.evictionNs += cost;
    return cost;
  }

  private jobDone(): void {
    if (this.job === Job.RECORD) this.finishRecord(this.record!, this.inProgress.end());
    else if (this.job === Job.DRAIN) this.finishDrain();
    this.record = null;
    this.requests.flush();
    this.startNext();
  }

  /** Places a record's pages from its `skip`-th on (page-wise, the first ones are in already). */
  private finishRecord(rec: StreamRecord, skip: number): void {
    if (rec.type === RecordType.POSTCOPY_TRANSITION) {
      this.transitioned = true;
      this.host.transition();
    } else if (rec.type === RecordType.POSTCOPY_PAGE_DATA) {
      const huge = this.hostPages;
      // A background scan's record is one run: placed without looking at each pfn.
      if (huge === null && rec.run) this.placeRun(pfnOf(rec, skip), pfnOf(rec, rec.received));
      else for (let i = skip, end = rec.received; i < end; i++) {
        const g = pfnOf(rec, i);
        if (huge === null) {
          // Consecutive pfns (a background scan's) are placed as one run.
          let n = 1;
          while (i + n < end && pfnOf(rec, i + n) === g + n) n++;
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

  /** Places the pages of the record in progress that the thread has reached by now (page-wise). */
  placeDue(): void {
    this.inProgress.placeDue();
  }

  /** A vCPU faulted on gfn (PageWiseLoad.faulted). */
  faulted(gfn: number): void {
    this.inProgress.faulted(gfn);
  }

  /** Makes a page accessible and answers whoever waits for it. */
  private place(g: number): void {
    if (!this.memory.load(g)) {
      this.pagesDiscarded++;
      return;
    }
    this.pagesLoaded++;
    this.host.settled(g);
    this.requests.placed(g, this.wakesQueued);
  }

  /** place() for each page of from..to−1. */
  private placeRun(from: number, to: number): void {
    if (to - from > 1 && this.memory.loadRun(from, to)) {
      this.pagesLoaded += to - from;
      this.host.settledRange(from, to);
      this.requests.placedRange(from, to, this.wakesQueued);
    } else for (let g = from; g < to; g++) this.place(g);
  }

  /** CRIU's `handle_requests`: the next chunk is asked for once every request is answered. */
  private pullNext(rec: StreamRecord): void {
    if (rec.pushed > 0) this.chunkPending = false;
    if (this.chunkPending || this.requests.live > 0 || this.memory.pending === 0) return;
    this.chunkPending = true;
    this.host.sendBack(control(RecordType.LAZY_XFER_NEXT));
  }

  private maybeComplete(): void {
    // Every field read at each call: one read only once the others let it through (the end of
    // the run) had no type feedback and deoptimised the caller it was inlined in.
    const transitioned = this.transitioned, sent = this.completeSent, left = this.memory.pending;
    if (transitioned && !sent && left === 0) {
      this.completeSent = true;
      this.host.sendBack(control(RecordType.POSTCOPY_COMPLETE));
    }
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

  /** Request `id` waits for its missing pages (Requests.book); a page of the record being placed gets an event at its time. */
  private book(id: number, again: boolean): void {
    this.placeDue();
    this.inProgress.booked(this.requests.book(id, again));
  }

  private finishDrain(): void {
    this.maybeComplete();
    this.requests.send(RecordType.POSTCOPY_FAULT);
  }

  /**
   * The connection failed at `now`: of the records read as they come, the pages still on the
   * wire are lost (the record in progress and those whose first page had arrived).
   */
  lose(now: number): void {
    if (!this.readsAsItComes) return;
    this.inProgress.lose(now);
    for (let i = 0; i < this.inbox.length; i++) cutAt(this.inbox.at(i), now);
  }

  /** Recovery's RECV_BITMAP (received-map.ts). */
  receivedMap(): Uint8Array {
    this.placeDue();
    this.hostPages?.dropPieces();
    const p = this.preempt;
    return receivedMap(this.memory, p === null ? [this.record] : [this.record, p.record], p === null ? [this.inbox] : [this.inbox, p.inbox]);
  }

  /**
   * The source resumed: FAULT and COMPLETE records written while the connection was down were
   * lost, so ask again for every page still requested and say COMPLETE again if nothing is
   * pending. Returns the pages asked for again.
   */
  resend(): number {
    this.chunkPending = true; // the resumed source sends a chunk unasked
    const asked = this.requests.askAgain();
    if (this.transitioned && this.memory.pending === 0) {
      this.completeSent = true;
      this.host.sendBack(control(RecordType.POSTCOPY_COMPLETE));
    }
    return asked;
  }
}
