import { Emitter, type EmulatorEvents } from './events.ts';
import { Recovery, type MigrationStatus } from './faults/recovery.ts';
import { FaultSchedule } from './faults/schedule.ts';
import { Kernel } from './kernel/kernel.ts';
import { Rng } from './kernel/rng.ts';
import { InFlight } from './link/in-flight.ts';
import { Link } from './link/link.ts';
import { PreemptChannel } from './link/preempt.ts';
import { FRESH, type Alloc } from './memory/arena.ts';
import { GuestMemory, drawZeroSet, outstandingSet, type OutstandingSet } from './memory/guest-memory.ts';
import type { NextMember } from './memory/skip-list.ts';
import { Precopy } from './precopy/precopy.ts';
import { LatencyLog } from './metrics/latency.ts';
import { CounterPoll, type CounterSample } from './metrics/poll.ts';
import { Timeline } from './metrics/timeline.ts';
import { Pager } from './pager/pager.ts';
import { FOREIGN, FaultRing, RequestKind } from './ring/ring.ts';
import { ringUnbounded, switchoverOf, type Scenario } from './scenario/schema.ts';
import { intArg } from './io/args.ts';
import { checkRunFits } from './scenario/estimate.ts';
import { parseScenario } from './scenario/validate.ts';
import { Source, discardPlan } from './source/source.ts';
import { LAZY_REQUEST_BYTES, REQ_PAGES_BYTES, RecordType, faultBytes, type BackRecord, type StreamRecord } from './stream/records.ts';
import { Mapper } from './workload/mapper.ts';
import { Vcpus } from './workload/vcpu.ts';

/** The members of a page set, as ascending runs. */
function members(set: NextMember): OutstandingSet {
  return {
    forEachRange: (fn) => {
      for (let g = set.next(0); g < set.size;) {
        const end = set.nextGap(g);
        fn(g, end);
        g = set.next(end);
      }
    },
  };
}

const NOTHING: OutstandingSet = { forEachRange: () => {} };

/** Whether the scenario as written (before defaults) sets `section` (or `section.field`). */
function given(input: unknown, section: string, field?: string): boolean {
  const v = typeof input === 'object' && input !== null ? (input as Record<string, unknown>)[section] : undefined;
  if (v === undefined) return false;
  return field === undefined || (typeof v === 'object' && v !== null && field in v);
}

/**
 * One migration, wired: source → stream link → pager ← ring ← vCPUs and mapper, pager →
 * back-channel → source. In postcopy mode time 0 is the moment the guest is paused at the source.
 * In precopy and hybrid modes the constructor first runs the precopy phase (docs/lifecycle.md) to
 * its end; the core then starts when precopy's last byte is on the wire, with the pages still
 * dirty at the switch as its outstanding set (none after stop-and-copy).
 */
export class Emulator {
  readonly scenario: Scenario;
  readonly kernel = new Kernel();
  readonly events: EmulatorEvents = new Emitter();
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
  readonly latency = new LatencyLog();
  readonly timeline: Timeline | null;
  /** query-migrate polls every timeline.pollMs from the core's start, when set. */
  readonly poll: CounterPoll | null;
  readonly faults: FaultSchedule;
  readonly recovery: Recovery;
  /** The precopy phase before the core (precopy and hybrid modes), run to its end. */
  readonly precopy: Precopy | null;
  /** When the guest was paused at the source (ns), or −1 if it never was. */
  readonly pausedAt: number;
  /** When the guest ran again at the destination (ns), or −1. */
  resumedAt = -1;
  /** Things about the scenario a user should know (printed by the CLI, kept in the JSON). */
  readonly warnings: string[] = [];
  /** Liveness breaches seen while running (checkRun reports them). */
  readonly livenessViolations: string[] = [];
  foreignFaults = 0;
  vcpuFaults = 0;
  private readonly inFlight = new InFlight<StreamRecord>();
  private readonly preemptInFlight = new InFlight<StreamRecord>();
  private readonly backInFlight = new InFlight<BackRecord>();
  private readonly arriveKind: number;
  private readonly backArriveKind: number;
  private switchedOver = false;

  /** `alloc`: where per-page arrays come from; pass an Arena only when runs never overlap. */
  constructor(input: unknown, alloc: Alloc = FRESH) {
    const s = (this.scenario = parseScenario(input));
    checkRunFits(s);
    const k = this.kernel;
    const pre = (this.precopy = s.migration.mode === 'postcopy' ? null : new Precopy(s).run());
    // One event budget for the whole run: what precopy used is gone.
    k.limit(s.limits.maxEvents - (pre?.kernel.events ?? 0), s.limits.maxEventsPerInstant);
    const handedOver = pre === null || pre.finished;
    this.pausedAt = pre === null ? 0 : pre.pausedAt;
    if (pre !== null) k.now = handedOver ? pre.startAt : pre.kernel.now;
    const outstanding = pre === null
      ? outstandingSet(s.memory.outstanding, s.memory.pages, new Rng(s.seed, 'memory'))
      : pre.postcopy ? members(pre.toSend) : NOTHING;
    if (pre !== null && given(input, 'memory', 'outstanding')) this.warnings.push(`memory.outstanding is ignored with migration.mode ${s.migration.mode}: precopy decides what is left`);
    this.memory = new GuestMemory(s.memory.pages, s.memory.pageSize, outstanding, alloc);
    this.memory.zero = pre === null ? drawZeroSet(s.memory.pages, s.memory.zeroFraction, new Rng(s.seed, 'zero-pages'), s.memory.zeroRanges, alloc) : pre.zero;
    // userfaultfd has no ring: QEMU's faults queue without bound (shared/reference/postcopy.md §2).
    const uffd = ringUnbounded(s);
    if (uffd && (given(input, 'ring', 'capacity') || given(input, 'ring', 'blackEye'))) {
      const why = s.ring.unbounded === undefined ? `source.policy ${s.source.policy}` : 'ring.unbounded';
      this.warnings.push(`ring.capacity and ring.blackEye are ignored with ${why}: userfaultfd queues faults without bound`);
    }
    this.ring = new FaultRing({ capacity: s.ring.capacity, vcpus: s.workload.vcpus, blackEye: s.ring.blackEye && !uffd, unbounded: uffd }, k);
    this.stream = new Link(s.link);
    this.backChannel = new Link(s.backChannel);
    // Arrivals carry the connection epoch they were sent in: after a cut they are stale.
    this.arriveKind = k.register((epoch) => {
      if (epoch === this.recovery.epoch) this.arrived(this.inFlight.shift());
    });
    const preemptArriveKind = k.register((epoch) => {
      if (epoch === this.recovery.epoch) this.arrived(this.preemptInFlight.shift());
    });
    this.backArriveKind = k.register((epoch) => {
      if (epoch === this.recovery.epoch) this.backArrived();
    });
    const woke = (v: number, fromQueue: boolean) => this.vcpus.woke(v, fromQueue);
    this.pager = new Pager(k, this.memory, this.ring, s, {
      consumed: (rec) => {
        // The preempt socket has room to spare for single pages; a stale record's socket is gone.
        if (rec.preempt || rec.epoch !== this.recovery.epoch) return;
        this.stream.consume(rec.bytes);
        this.source.windowUpdate();
      },
      sendBack: (rec) => this.sendBack(rec),
      settled: (g) => {
        this.mapper.settled(g);
        if (this.events.observed && this.events.listenerCount('page-loaded') > 0) this.events.emit('page-loaded', { time: k.now, gfn: g });
      },
      answered: (id) => this.answered(id),
      slotsFreed: () => {
        this.ring.wake(woke);
        this.checkFinished();
      },
      transition: () => this.mapper.start(),
    }, alloc);
    this.preempt = s.preempt.enabled ? new PreemptChannel(this.stream, s.preempt.share) : null;
    const preemptPath = this.preempt && {
      channel: this.preempt,
      deliver: (rec: StreamRecord, arrival: number) => {
        rec.epoch = this.recovery.epoch;
        this.preemptInFlight.push(rec);
        k.at(arrival, preemptArriveKind, rec.epoch);
      },
    };
    this.source = new Source(k, this.memory, this.stream, s, (rec, arrival) => {
      rec.epoch = this.recovery.epoch;
      this.inFlight.push(rec);
      k.at(arrival, this.arriveKind, rec.epoch);
    }, preemptPath, alloc, switchoverOf(s) === 'discard' ? discardPlan(s, this.memory, pre) : null);
    this.source.onDone = () => this.sourceDone();
    this.recovery = new Recovery(k, s.recovery, this.stream, this.backChannel, this.source, this.pager, {
      dropConnection: () => {
        for (const q of [this.inFlight, this.preemptInFlight, this.backInFlight]) q.clear();
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
    this.mapper = new Mapper(k, this.memory, this.ring, s, new Rng(s.seed, 'mapper'), {
      put: (id) => this.put(id),
      kick: () => this.pager.kick(),
      mapped: () => this.guestResumed(),
    });
    this.vcpus = new Vcpus(k, this.memory, this.ring, s, {
      put: (id) => {
        this.put(id);
        this.pager.kick();
      },
      faulted: (v, g) => {
        this.vcpuFaults++;
        if (this.events.observed && this.events.listenerCount('vcpu-blocked') > 0) this.events.emit('vcpu-blocked', { time: k.now, vcpu: v, gfn: g });
      },
      stillBlocked: (v, since) => this.checkLiveness(v, since),
      resumed: (v, g, since) => {
        const waited = k.now - since;
        this.latency.add(waited);
        this.checkLiveness(v, since);
        if (this.events.observed && this.events.listenerCount('vcpu-resumed') > 0) this.events.emit('vcpu-resumed', { time: k.now, vcpu: v, gfn: g, waited });
      },
    }, alloc);
    this.timeline = s.timeline.samples > 0
      ? new Timeline(k, s.timeline.samples, {
        ringOccupancy: () => this.ring.occupancy,
        pagesResident: () => this.memory.pages - this.memory.pending,
        vcpusBlocked: () => this.vcpus.blockedCount,
        bytesTransferred: () => this.stream.bytesPayload,
      })
      : null;
    this.poll = handedOver && s.timeline.pollMs > 0 ? new CounterPoll(k, s.timeline.pollMs * 1e6, this.counterReader()) : null;
    if (handedOver) this.source.start();
  }

  /** What a poll reads after precopy: the core's bytes on top of precopy's; mbps since the last poll. */
  private counterReader(): () => Omit<CounterSample, 't-ms'> {
    const pre = this.precopy, k = this.kernel;
    let lastBytes = -1, lastT = k.now;
    return () => {
      const bytes = (pre?.bytes ?? 0) + this.coreBytes;
      const mbps = lastBytes >= 0 && k.now > lastT ? ((bytes - lastBytes) * 8) / ((k.now - lastT) / 1e3) : 0;
      lastBytes = bytes;
      lastT = k.now;
      return {
        status: this.status,
        transferred: bytes,
        remaining: this.memory.pending * this.memory.pageSize,
        'dirty-sync-count': pre?.syncs ?? 0,
        mbps: Math.round(mbps * 100) / 100,
        'expected-downtime': pre ? Math.round(pre.convergence.expectedDowntimeMs) : 0,
        'dirty-pages-rate': pre?.convergence.dirtyPagesRate ?? 0,
        'cpu-throttle-percentage': pre?.convergence.throttlePct ?? 0,
        'postcopy-requests': this.source.requestsReceived,
      };
    };
  }

  /**
   * True once the source has COMPLETE, the guest runs at the destination and every fault put
   * before the last page arrived has been answered.
   */
  get finished(): boolean {
    return this.source.done && this.resumedAt >= 0 && this.ring.occupancy === 0 && this.ring.waitQueue.length === 0;
  }

  /** Bytes the core wrote: the stream and the preempt channel. */
  get coreBytes(): number {
    return this.stream.bytesPayload + (this.preempt?.bytesPayload ?? 0);
  }

  /** Why a bound (limits.maxEvents, limits.maxEventsPerInstant) stopped the run, or null. */
  get limitReason(): string | null {
    return this.precopy?.kernel.stopReason ?? this.kernel.stopReason;
  }

  /**
   * How the run was cut short before it reached limits.stopAt: by the horizon (its figures are
   * lower bounds) or by a bound that makes it fail; null when it was not.
   */
  get truncated(): { by: 'horizon' | 'limit'; reason: string } | null {
    const limit = this.limitReason;
    if (limit !== null) return { by: 'limit', reason: limit };
    const pre = this.precopy;
    const cut = pre !== null && pre.end === 'horizon'
      ? true
      : !this.stopped && this.recovery.failure === null && this.kernel.pending > 0 && this.kernel.nextTime() > this.scenario.limits.horizonNs;
    if (!cut) return null;
    return { by: 'horizon', reason: `the horizon (limits.horizonNs = ${this.scenario.limits.horizonNs / 1e9} s) ended the run before it ${this.scenario.limits.stopAt === 'resume' ? 'resumed the guest' : 'completed'}` };
  }

  /** QEMU's migration status now: `completed` once finished, `failed` when a bound stopped it. */
  get status(): MigrationStatus {
    if (this.finished) return 'completed';
    if (this.limitReason !== null) return 'failed';
    const pre = this.precopy;
    if (pre !== null && !pre.finished) return pre.status;
    if (pre !== null && !pre.postcopy) return 'device';
    return this.recovery.status;
  }

  /** True when the run has reached what limits.stopAt asks for. */
  get stopped(): boolean {
    return this.scenario.limits.stopAt === 'resume' ? this.resumedAt >= 0 : this.finished;
  }

  /**
   * A foreign accessor (the device model) asks for gfn..gfn+count−1 now, as one page request
   * (count 1) or one range request: the ring id, or EBUSY (−1) when the ring is full. Pages
   * already being paged in are not asked for again, as in Xen; −2 when nothing was missing.
   */
  foreignFault(gfn: number, count = 1): number {
    const mem = this.memory;
    intArg('Emulator.foreignFault.gfn', gfn, 0, mem.pages - 1);
    intArg('Emulator.foreignFault.count', count, 1, mem.pages - gfn);
    let first = gfn;
    while (first < gfn + count && !mem.unasked.has(first)) first++;
    if (first === gfn + count) return -2;
    const id = this.ring.putForeign(count > 1 ? RequestKind.RANGE : RequestKind.PAGE, gfn, count);
    if (id < 0) return id;
    for (let g = gfn; g < gfn + count; g++) if (mem.unasked.has(g)) mem.markPagingIn(g);
    this.put(id);
    this.pager.kick();
    return id;
  }

  /** Processes one event; false when the run is over. */
  step(): boolean {
    return this.kernel.step();
  }

  runUntil(t: number): void {
    this.kernel.runUntil(t);
  }

  /**
   * Runs to the end: postcopy complete, the horizon (limits.horizonNs), or nothing left to
   * happen. `onProgress` hears the simulated time every 65 536 events.
   */
  run(onProgress?: (nowNs: number) => void): this {
    const k = this.kernel, horizon = this.scenario.limits.horizonNs;
    k.runTo(horizon, onProgress);
    // Cut by the horizon: the run was watched until then (downtime so far is at least that).
    if (!k.isHalted && k.pending > 0 && horizon > k.now) k.now = horizon;
    this.vcpus.stop();
    this.poll?.sample();
    return this;
  }

  /** A stream record reached the destination. */
  private arrived(rec: StreamRecord): void {
    if (rec.type === RecordType.POSTCOPY_RESUME_ACK) {
      this.stream.consume(rec.bytes);
      this.source.windowUpdate(); // with tiny socket buffers the source waits on this read
      this.recovery.resumeAcked();
      return;
    }
    if (rec.type === RecordType.POSTCOPY_TRANSITION) this.switchedOver = true;
    this.pager.receive(rec);
  }

  private sendBack(rec: BackRecord): void {
    const k = this.kernel;
    const request = rec.type === RecordType.POSTCOPY_FAULT || rec.type === RecordType.REQ_PAGES;
    const bytes = rec.type === RecordType.POSTCOPY_COMPLETE ? 8
      : rec.type === RecordType.LAZY_XFER_NEXT ? LAZY_REQUEST_BYTES
      : rec.type === RecordType.REQ_PAGES ? REQ_PAGES_BYTES : faultBytes(rec.pfnCount, rec.rangeCount);
    // While the connection is down the record is lost; the pager sends it again on resume.
    const lost = !this.recovery.connected || (request && this.faults.loseFault());
    if (!lost) {
      this.backInFlight.push(rec);
      k.at(this.backChannel.send(k.now, bytes), this.backArriveKind, this.recovery.epoch);
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
    if (this.recovery.status === 'postcopy-active' && blocked > this.scenario.limits.livenessNs) {
      this.livenessViolations.push(`vCPU ${v} blocked ${blocked} ns after faults healed (bound ${this.scenario.limits.livenessNs} ns)`);
    }
  }

  /** A request was put on the ring: count it, tell observers. */
  private put(id: number): void {
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

  private answered(id: number): void {
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
    if (this.events.observed && this.events.listenerCount('guest-resumed') > 0) this.events.emit('guest-resumed', { time: k.now });
    this.checkFinished();
  }

  private checkFinished(): void {
    if (this.stopped) this.kernel.halt();
  }
}
