import { argCheck, objArg } from './io/args.ts';
import type { EmulatorEvents } from './events.ts';
import { Recovery } from './faults/recovery.ts';
import { livenessBoundNs } from './faults/liveness.ts';
import { FaultSchedule } from './faults/schedule.ts';
import { Kernel } from './kernel/kernel.ts';
import { IopfDma } from './devices/iopf.ts';
import { Rng } from './kernel/rng.ts';
import { InFlight } from './link/in-flight.ts';
import { Link } from './link/link.ts';
import { PreemptChannel } from './link/preempt.ts';
import type { Alloc } from './memory/arena.ts';
import { GuestMemory, type OutstandingSet } from './memory/guest-memory.ts';
import type { NextMember } from './memory/skip-list.ts';
import { LatencyLog } from './metrics/latency.ts';
import { Pager, type PagerHost } from './pager/pager.ts';
import type { Precopy } from './precopy/precopy.ts';
import { FOREIGN, FaultRing, RequestKind } from './ring/ring.ts';
import { ringUnbounded, switchoverOf, type Scenario } from './scenario/schema.ts';
import { Source, discardPlan } from './source/source.ts';
import { DirtyClear } from './precopy/dirty-clear.ts';
import { LAZY_REQUEST_BYTES, REQ_PAGES_BYTES, RecordType, faultBytes, type BackRecord, type StreamRecord } from './stream/records.ts';
import { Mapper, type MapperHost } from './workload/mapper.ts';
import { Vcpus, type VcpuHost } from './workload/vcpu.ts';

/** What the core takes over at the switchover: the pages still at the source and the zero pages. */
export interface Handover {
  outstanding: OutstandingSet;
  zero: NextMember | null;
  /** The precopy phase before it, or null in postcopy mode. */
  precopy: Precopy | null;
}

/**
 * The migration from the switchover on, wired: source → stream link → pager ← ring ← vCPUs and
 * mapper, pager → back-channel → source. It is built on the emulator's clock at the switchover
 * (time 0 in postcopy mode; precopy's handover otherwise) and `start()`ed there.
 */
export class Core implements PagerHost, MapperHost, VcpuHost {
  readonly memory: GuestMemory;
  readonly ring: FaultRing;
  readonly stream: Link;
  readonly backChannel: Link;
  /** QEMU's postcopy-preempt channel, when the scenario enables it. */
  readonly preempt: PreemptChannel | null;
  readonly pager: Pager;
  readonly source: Source;
  readonly mapper: Mapper;
  readonly vcpus: Vcpus;
  readonly latency: LatencyLog;
  readonly faults: FaultSchedule;
  readonly recovery: Recovery;
  /** When the guest ran again at the destination (ns), or −1 (startedAt, transitionAt and it start as doubles: see Kernel.now). */
  resumedAt = NaN;
  /** Liveness breaches seen while running (checkRun reports them). */
  readonly livenessViolations: string[] = [];
  /** The checker's bound on a vCPU's wait once faults have healed (limits.livenessNs, or derived). */
  readonly livenessBound: number;
  /** Devices whose DMA faults through the IOMMU at the destination (`pageFaults: iopf`), by device index; null: none. */
  readonly iopf: (IopfDma | null)[] | null;
  foreignFaults = 0;
  vcpuFaults = 0;
  private readonly inFlight = new InFlight<StreamRecord>();
  private readonly preemptInFlight = new InFlight<StreamRecord>();
  private readonly backInFlight = new InFlight<BackRecord>();
  private readonly arriveKind: number;
  /** When the last record sent on the stream is whole at the destination. */
  private streamArrival = 0;
  private readonly backArriveKind: number;
  private switchedOver = false;

  constructor(
    private readonly kernel: Kernel,
    private readonly events: EmulatorEvents,
    private readonly scenario: Scenario,
    h: Handover,
    /** Whether the scenario sets ring.capacity or ring.blackEye (userfaultfd ignores them). */
    ringGiven: boolean,
    warnings: string[],
    alloc: Alloc,
  ) {
    argCheck(kernel instanceof Kernel, 'Core.kernel', 'must be the run\'s Kernel');
    objArg('Core.scenario', scenario, 'a parsed scenario (parseScenario(input))');
    objArg('Core.handover', h, 'what the switchover hands over ({ outstanding, zero, precopy })');
    const s = scenario, k = kernel;
    this.resumedAt = this.startedAt = this.transitionAt = -1;
    this.latency = new LatencyLog(alloc);
    this.memory = new GuestMemory(s.memory.pages, s.memory.pageSize, h.outstanding, alloc);
    this.memory.zero = h.zero;
    // userfaultfd has no ring: QEMU's faults queue without bound (shared/reference/postcopy.md §2).
    const uffd = ringUnbounded(s);
    if (uffd && ringGiven) {
      const why = s.ring.unbounded === undefined ? `source.policy ${s.source.policy}` : 'ring.unbounded';
      warnings.push(`ring.capacity and ring.blackEye are ignored with ${why}: userfaultfd queues faults without bound`);
    }
    if (s.pager.wakeAt === 'page' && (s.memory.hostPageSize ?? s.memory.pageSize) > s.memory.pageSize) {
      warnings.push(`pager.wakeAt page is ignored with memory.hostPageSize ${s.memory.hostPageSize}: a huge host page is placed whole, when its last piece arrives`);
    }
    this.ring = new FaultRing({ capacity: s.ring.capacity, vcpus: s.workload.vcpus, blackEye: s.ring.blackEye && !uffd, unbounded: uffd }, k);
    this.stream = new Link(s.link);
    this.backChannel = new Link(s.backChannel);
    this.livenessBound = livenessBoundNs(s, this.stream, this.backChannel);
    // Arrivals carry the connection epoch they were sent in: after a cut they are stale.
    this.arriveKind = k.register((epoch) => {
      if (epoch === this.recovery.epoch) this.arrived(this.inFlight.shift());
    }, true);
    const preemptArriveKind = k.register((epoch) => {
      if (epoch === this.recovery.epoch) this.arrived(this.preemptInFlight.shift());
    }, true);
    this.backArriveKind = k.register((epoch) => {
      if (epoch === this.recovery.epoch) this.backArrived();
    }, true);
    this.pager = new Pager(k, this.memory, this.ring, s, this, alloc);
    this.preempt = s.preempt.enabled ? new PreemptChannel(this.stream, s.preempt.share) : null;
    const preemptPath = this.preempt && {
      channel: this.preempt,
      deliver: (rec: StreamRecord, arrival: number) => {
        rec.epoch = this.recovery.epoch;
        this.preemptInFlight.push(rec);
        k.atInOrder(arrival, preemptArriveKind, rec.epoch);
      },
    };
    this.source = new Source(k, this.memory, this.stream, s, this, preemptPath, alloc, switchoverOf(s) === 'discard' ? discardPlan(s, this.memory, h.precopy) : null, h.precopy ? h.precopy.clear : DirtyClear.of(s));
    this.source.onDone = () => this.sourceDone();
    this.recovery = new Recovery(k, s.recovery, this.stream, this.backChannel, this.source, this.pager, {
      dropConnection: () => {
        for (const q of [this.inFlight, this.preemptInFlight, this.backInFlight]) q.clear();
        this.pager.lose(k.now);
        this.stream.reset(k.now);
        this.backChannel.reset(k.now);
        this.preempt?.reset(k.now);
      },
      switchedOver: () => this.switchedOver,
      statusChanged: (status) => {
        if (this.events.observed && this.events.listenerCount('status') > 0) this.events.emit('status', { time: k.now, status });
      },
    });
    this.faults = new FaultSchedule(k, s, [this.stream, this.backChannel], this.recovery);
    this.mapper = new Mapper(k, this.memory, this.ring, s, new Rng(s.seed, 'mapper'), this);
    const iopf = s.devices.map((d, i) => (d.pageFaults === 'iopf' && d.dma ? new IopfDma(k, this.memory, {
      request: (g) => (this.memory.unasked.has(g) ? this.foreignFault(g, 1) : -2),
      placeDue: () => this.placeDue(),
    }, d.dma, d.priCredits, new Rng(s.seed, `iopf-${i}`)) : null));
    this.iopf = iopf.some((d) => d !== null) ? iopf : null;
    this.vcpus = new Vcpus(k, this.memory, this.ring, s, this);
  }

  // The components' hosts (PagerHost, SourceHost, MapperHost, VcpuHost) are the core's methods,
  // not closures: the functions their hot paths call are then the same in every run, and code
  // V8 compiled with them inlined stays valid for the next Emulator.

  /** PagerHost: the pager read a stream record. */
  consumed(rec: StreamRecord): void {
    // The preempt socket has room to spare for single pages; a stale record's socket is gone.
    if (rec.preempt || rec.epoch !== this.recovery.epoch) return;
    this.stream.consume(rec.bytes);
    this.source.windowUpdate();
  }

  /** PagerHost: a page was loaded or dropped. */
  settled(g: number): void {
    this.mapper.settled(g);
    this.vcpus.settled(g);
    if (this.iopf !== null) for (const d of this.iopf) d?.settled(g);
    if (this.events.observed && this.events.listenerCount('page-loaded') > 0) this.events.emit('page-loaded', { time: this.kernel.now, gfn: g });
  }

  /** PagerHost: the pages from..to−1 were loaded. */
  settledRange(from: number, to: number): void {
    if (this.iopf === null && !this.events.observed) {
      this.mapper.settledRange(from, to);
      this.vcpus.settledRange(from, to);
    } else for (let g = from; g < to; g++) this.settled(g);
  }

  /** PagerHost: a PAGE_DATA record was loaded. */
  pfnsRead(rec: StreamRecord): void {
    this.source.release(rec);
  }

  /** PagerHost: responses were consumed. */
  slotsFreed(): void {
    this.ring.wake(this.woke);
    this.mapper.slotsFreed();
    this.checkFinished();
  }

  private readonly woke = (v: number, fromQueue: boolean): void => this.vcpus.woke(v, fromQueue);

  /** PagerHost: whether a vCPU spins on gfn (Xen's paging-in page). */
  spinsOn(gfn: number): boolean {
    return this.vcpus.spinsOn(gfn);
  }

  /** PagerHost: whether any vCPU spins. */
  spinning(): boolean {
    return this.vcpus.spinning > 0;
  }

  /** PagerHost: POSTCOPY_TRANSITION was processed. */
  transition(): void {
    this.mapper.start();
  }

  /**
   * SourceHost: a stream record goes on the wire, its last byte arriving at `arrival`. A
   * PAGE_DATA record the pager reads as it comes is handed over when its first page is in: its
   * pages come one page's wire time apart (`gapNs`, the record's wire time spread over them).
   */
  deliver(rec: StreamRecord, arrival: number): void {
    rec.epoch = this.recovery.epoch;
    this.inFlight.push(rec);
    let at = arrival;
    if (this.pager.readsAsItComes && rec.type === RecordType.POSTCOPY_PAGE_DATA && rec.count > 1) {
      rec.gapNs = this.stream.serialiseNs(rec.bytes) / rec.count;
      // Never before the record ahead of it is whole (a degrade may have lowered the latency).
      at = Math.max(this.streamArrival, arrival - Math.ceil((rec.count - 1) * rec.gapNs));
    }
    this.streamArrival = arrival;
    this.kernel.atInOrder(at, this.arriveKind, rec.epoch);
  }

  /** MapperHost and VcpuHost: the pager's event channel fires. */
  kick(): void {
    this.pager.kick();
  }

  /** MapperHost: every mapping succeeded. */
  mapped(): void {
    this.guestResumed();
  }

  /** VcpuHost and the DMA's page faults: what the pager has placed by now is present. */
  placeDue(): void {
    this.pager.placeDue();
  }

  /** VcpuHost: vCPU `v` faulted on `g`. */
  faulted(v: number, g: number): void {
    this.vcpuFaults++;
    this.pager.faulted(g);
    if (this.events.observed && this.events.listenerCount('vcpu-blocked') > 0) this.events.emit('vcpu-blocked', { time: this.kernel.now, vcpu: v, gfn: g });
  }

  /** VcpuHost: the run stopped with vCPU `v` blocked. */
  stillBlocked(v: number, since: number): void {
    this.checkLiveness(v, since);
  }

  /** VcpuHost: vCPU `v` ran again. */
  resumed(v: number, g: number, since: number): void {
    const k = this.kernel, waited = k.now - since;
    this.latency.add(waited);
    this.checkLiveness(v, since);
    if (this.events.observed && this.events.listenerCount('vcpu-resumed') > 0) this.events.emit('vcpu-resumed', { time: k.now, vcpu: v, gfn: g, waited });
  }

  /** When the core started, and when the CPU context (TRANSITION) reached the destination (−1: not yet). */
  startedAt = NaN;
  transitionAt = NaN;

  /** The source starts sending: the switchover. */
  start(): void {
    this.startedAt = this.kernel.now;
    this.source.start();
  }

  /**
   * True once the source has COMPLETE, the guest runs at the destination and every fault put
   * before the last page arrived has been answered.
   */
  get finished(): boolean {
    return this.source.done && this.resumedAt >= 0 && this.ring.occupancy === 0 && this.ring.waitQueue.length === 0;
  }

  /** True when the run has reached what limits.stopAt asks for. */
  get stopped(): boolean {
    return this.scenario.limits.stopAt === 'resume' ? this.resumedAt >= 0 : this.finished;
  }

  /** Bytes the core wrote: the stream and the preempt channel. */
  get coreBytes(): number {
    return this.stream.bytesPayload + (this.preempt?.bytesPayload ?? 0);
  }

  /** See Emulator.foreignFault. */
  foreignFault(gfn: number, count: number): number {
    const mem = this.memory;
    if (mem.unasked.firstIn(gfn, gfn + count) === gfn + count) return -2;
    const id = this.ring.putForeign(count > 1 ? RequestKind.RANGE : RequestKind.PAGE, gfn, count);
    if (id < 0) return id;
    mem.markPagingInRange(gfn, gfn + count);
    this.put(id);
    this.pager.kick();
    return id;
  }

  /** A stream record reached the destination. */
  private arrived(rec: StreamRecord): void {
    if (rec.type === RecordType.POSTCOPY_RESUME) {
      this.stream.consume(rec.bytes);
      this.source.windowUpdate(); // with tiny socket buffers the source waits on this read
      this.recovery.resumeReceived();
      return;
    }
    // switchedOver first: read at every record, its V8 feedback exists when the transition comes.
    if (!this.switchedOver && rec.type === RecordType.POSTCOPY_TRANSITION) {
      this.switchedOver = true;
      this.transitionAt = this.kernel.now;
    }
    this.pager.receive(rec);
  }

  /** PagerHost: a record goes on the back-channel. */
  sendBack(rec: BackRecord): void {
    const k = this.kernel;
    const request = rec.type === RecordType.POSTCOPY_FAULT || rec.type === RecordType.REQ_PAGES;
    const bytes = rec.type === RecordType.POSTCOPY_COMPLETE ? 8
      : rec.type === RecordType.LAZY_XFER_NEXT ? LAZY_REQUEST_BYTES
      : rec.type === RecordType.REQ_PAGES ? REQ_PAGES_BYTES : faultBytes(rec.pfnCount, rec.rangeCount);
    // While the connection is down the record is lost; the pager sends it again on resume.
    const lost = !this.recovery.destinationConnected || (request && this.faults.loseFault());
    if (!lost) {
      this.backInFlight.push(rec);
      k.atInOrder(this.backChannel.send(k.now, bytes), this.backArriveKind, this.recovery.epoch);
    }
    if (request && this.events.observed && this.events.listenerCount('forward') > 0) {
      const pfns = Array.from(rec.pfns.subarray(rec.pfnAt, rec.pfnAt + rec.pfnCount));
      const ranges = Array.from(rec.ranges.subarray(rec.rangeAt, rec.rangeAt + 2 * rec.rangeCount));
      this.events.emit('forward', { time: k.now, pfns, ranges });
    }
  }

  /**
   * "No vCPU blocked past a bound once faults have healed": measured from the later of the fault
   * and the last heal (a fault window's end, or recovery back to postcopy-active).
   */
  private checkLiveness(v: number, since: number): void {
    const k = this.kernel, h = this.recovery.history;
    let healed = this.faults.lastEndBefore(k.now);
    for (let i = h.length - 1; i >= 0; i--) {
      if (h[i]!.status === 'postcopy-active' && h[i]!.at <= k.now) {
        healed = Math.max(healed, h[i]!.at);
        break;
      }
    }
    const blocked = k.now - Math.max(since, healed);
    if (this.recovery.status === 'postcopy-active' && blocked > this.livenessBound) {
      this.livenessViolations.push(`vCPU ${v} blocked ${blocked} ns after faults healed (bound ${this.livenessBound} ns)`);
    }
  }

  /** MapperHost and VcpuHost: a request was put on the ring: count it, tell observers. */
  put(id: number): void {
    const ring = this.ring, k = this.kernel;
    const producer = ring.producerOf(id);
    if (producer === FOREIGN) this.foreignFaults++;
    if (!this.events.observed) return;
    if (this.events.listenerCount('fault') > 0) {
      const count = ring.kindOf(id) === RequestKind.RANGE ? ring.countOf(id) : 1;
      this.events.emit('fault', { time: k.now, producer, gfn: ring.gfnOf(id), count });
    }
    if (ring.free === 0 && this.events.listenerCount('ring-full') > 0) {
      this.events.emit('ring-full', { time: k.now, occupancy: ring.occupancy });
    }
  }

  /** PagerHost: the response to request `id` was consumed. */
  answered(id: number): void {
    const producer = this.ring.producerOf(id);
    if (producer === FOREIGN) this.latency.add(this.kernel.now - this.ring.putTimeOf(id));
    else this.vcpus.answered(producer);
  }

  private backArrived(): void {
    this.source.receive(this.backInFlight.shift()!);
  }

  /** The source read COMPLETE: postcopy is over once the guest runs and the ring is empty. */
  private sourceDone(): void {
    if (this.events.observed && this.events.listenerCount('complete') > 0) this.events.emit('complete', { time: this.kernel.now });
    this.checkFinished();
  }

  private guestResumed(): void {
    const k = this.kernel;
    this.resumedAt = k.now;
    this.vcpus.start();
    if (this.iopf !== null) for (const d of this.iopf) d?.start();
    if (this.events.observed && this.events.listenerCount('guest-resumed') > 0) this.events.emit('guest-resumed', { time: k.now });
    this.checkFinished();
  }

  private checkFinished(): void {
    if (this.stopped) this.kernel.halt();
  }
}
