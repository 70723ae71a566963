import { Core } from './core.ts';
import { EMULATOR_EVENTS, Emitter, type EmulatorEventMap, type EmulatorEvents } from './events.ts';
import type { MigrationStatus } from './faults/recovery.ts';
import { argCheck, intArg, timeArg } from './io/args.ts';
import { PostcopyEmuError } from './io/errors.ts';
import { makeDevices, type Devices } from './devices/devices.ts';
import { Kernel } from './kernel/kernel.ts';
import { Link } from './link/link.ts';
import { Rng } from './kernel/rng.ts';
import { FRESH, type Alloc } from './memory/arena.ts';
import { drawZeroSet, outstandingSet, type OutstandingSet } from './memory/guest-memory.ts';
import type { NextMember } from './memory/skip-list.ts';
import { precopyCounters } from './metrics/lifecycle.ts';
import { CounterPoll, coreCounters, type CounterSample } from './metrics/poll.ts';
import { Timeline } from './metrics/timeline.ts';
import { Precopy, type StopMilestones } from './precopy/precopy.ts';
import type { Scenario } from './scenario/schema.ts';
import { checkRunFits } from './scenario/estimate.ts';
import { parseScenario } from './scenario/validate.ts';
import { ignoredFields } from './scenario/applies.ts';

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

/** The warning for events scheduled past 2^53 ns (Kernel.at): they never happen. */
const BEYOND = 'times past 2^53 ns (104 days) never come';

/**
 * One migration on one clock (docs/lifecycle.md): in precopy and hybrid modes setup and the
 * precopy iterations run first; at the switchover the core (src/core.ts: the pager, its ring, the
 * source's background push and the faults) is built and takes over, on the same kernel, when
 * precopy's last byte is on the wire, with the pages still dirty as its outstanding set (none
 * after stop-and-copy). In postcopy mode time 0 is the moment the guest is paused at the source
 * and the core exists from the start. `step()` and `runUntil()` walk every phase.
 */
export class Emulator {
  readonly scenario: Scenario;
  readonly kernel: Kernel;
  readonly events: EmulatorEvents = new Emitter<EmulatorEventMap>(EMULATOR_EVENTS);
  /** The precopy phase (precopy and hybrid modes), or null in postcopy mode. */
  readonly precopy: Precopy | null;
  /** The VM's passthrough devices (docs/devices.md), or null when it has none. */
  readonly devices: Devices | null;
  /** The switchover's milestones in the downtime (precopy's, or the devices' in postcopy mode). */
  readonly stopMilestones: StopMilestones;
  readonly timeline: Timeline | null;
  /** query-migrate polls every timeline.pollMs over the whole run, when set. */
  readonly poll: CounterPoll | null;
  /** Things about the scenario a user should know (printed by the CLI, kept in the JSON). */
  readonly warnings: string[] = [];
  private built: Core | null = null;
  /** Builds the core at the handover (set once the handover is scheduled). */
  private pendingBuild: (() => Core) | null = null;
  private readonly input: unknown;
  private readonly alloc: Alloc;
  /** Reads the counters a poll samples: precopy's, then the core's. */
  private readCounters: (() => Omit<CounterSample, 't-ms'>) | null = null;

  /** `alloc`: where per-page arrays come from; pass an Arena only when runs never overlap. */
  constructor(input: unknown, alloc: Alloc = FRESH) {
    const s = (this.scenario = parseScenario(input));
    checkRunFits(s);
    this.warnings.push(...ignoredFields(input, s));
    this.input = input;
    this.alloc = alloc;
    const k = (this.kernel = new Kernel(alloc));
    // One event budget for the whole run.
    k.limit(s.limits.maxEvents, s.limits.maxEventsPerInstant);
    const pollNs = s.timeline.pollMs * 1e6;
    const ev = this.events;
    const dev = (this.devices = makeDevices(s, s.backChannel.latencyNs, (e) => {
      if (ev.observed && ev.listenerCount('device') > 0) ev.emit('device', e);
    }, k.work));
    if (s.migration.mode === 'postcopy') {
      this.precopy = null;
      this.stopMilestones = { devicesStopped: 0, ramSent: 0, devicesSent: 0, drained: 0 };
      const outstanding = outstandingSet(s.memory.outstanding, s.memory.pages, new Rng(s.seed, 'memory'));
      const zero = drawZeroSet(s.memory.pages, s.memory.zeroFraction, new Rng(s.seed, 'zero-pages'), s.memory.zeroRanges, alloc);
      if (dev !== null) {
        // Devices that can fault (iopf): their state goes first, in the downtime, then postcopy.
        this.timeline = this.makeTimeline();
        this.poll = pollNs > 0 ? new CounterPoll(k, pollNs, () => this.readCounters!()) : null;
        this.readCounters = () => this.idleCounters();
        const link = new Link(s.link), m = (this.stopMilestones = { devicesStopped: -1, ramSent: -1, devicesSent: -1, drained: -1 });
        // A run cut before the first event still ends with a core to read.
        this.pendingBuild = () => this.buildCore(outstanding, zero);
        // At time 0 on the clock, so the `device` event reports every arc.
        k.at(0, k.register(() => {
          dev.setup(0);
          m.devicesStopped = m.ramSent = dev.stop(0);
          m.devicesSent = dev.stopCopy(m.devicesStopped, (t, bytes) => link.sendRead(t, bytes));
          m.drained = Math.max(m.devicesSent, link.busyUntil);
          this.handover(Math.max(m.drained, dev.start()), () => this.buildCore(outstanding, zero));
        }));
        return;
      }
      const core = this.buildCore(outstanding, zero);
      this.timeline = this.makeTimeline();
      this.readCounters = coreCounters(k, core, null, () => this.status);
      this.poll = pollNs > 0 ? new CounterPoll(k, pollNs, () => this.readCounters!()) : null;
      core.start();
      return;
    }
    if (given(input, 'memory', 'outstanding')) this.warnings.push(`memory.outstanding is ignored with migration.mode ${s.migration.mode}: precopy decides what is left`);
    const pre: Precopy = (this.precopy = new Precopy(s, k, {
      status: (status) => {
        if (ev.observed && ev.listenerCount('status') > 0) ev.emit('status', { time: k.now, status });
      },
      synced: (at, fresh, remaining) => {
        if (ev.observed && ev.listenerCount('sync') > 0) ev.emit('sync', { time: at, count: pre.syncs, fresh, remaining });
      },
      done: (startAt) => {
        this.poll?.sample();
        this.handover(startAt, () => this.buildCore(pre.postcopy ? members(pre.toSend) : NOTHING, pre.zero));
      },
    }, dev, alloc));
    this.stopMilestones = pre.stopAt;
    this.readCounters = () => precopyCounters(pre);
    this.poll = pollNs > 0 ? new CounterPoll(k, pollNs, () => this.readCounters!()) : null;
    this.timeline = this.makeTimeline();
  }

  private makeTimeline(): Timeline | null {
    const s = this.scenario, pre = this.precopy;
    if (s.timeline.samples === 0) return null;
    return new Timeline(this.kernel, s.timeline.samples, {
      ringOccupancy: () => this.built?.ring.occupancy ?? 0,
      // Before the switchover: the pages the destination holds as far as the source knows.
      pagesResident: () => (this.built ? s.memory.pages - this.built.memory.pending : pre ? s.memory.pages - pre.remaining : 0),
      vcpusBlocked: () => this.built?.vcpus.blockedCount ?? 0,
      bytesTransferred: () => (pre?.bytes ?? 0) + (this.built?.stream.bytesPayload ?? 0),
    });
  }

  private buildCore(outstanding: OutstandingSet, zero: NextMember | null): Core {
    const s = this.scenario;
    const ringGiven = given(this.input, 'ring', 'capacity') || given(this.input, 'ring', 'blackEye');
    return (this.built = new Core(this.kernel, this.events, s, { outstanding, zero, precopy: this.precopy }, ringGiven, this.warnings, this.alloc));
  }

  /** The core takes over at `startAt` (precopy's last byte, and the devices' state, arrived). */
  private handover(startAt: number, build: () => Core): void {
    const k = this.kernel;
    this.pendingBuild = build;
    k.at(startAt, k.register(() => {
      const core = build();
      // The poll starts over at the handover, as a fresh query-migrate reader would.
      this.readCounters = coreCounters(k, core, this.precopy, () => this.status);
      this.poll?.restart();
      core.start();
    }));
  }

  /** What a poll reads before anything was sent. */
  private idleCounters(): Omit<CounterSample, 't-ms'> {
    const m = this.scenario.memory;
    return {
      status: this.status, transferred: 0, remaining: m.pages * m.pageSize, 'dirty-sync-count': 0, mbps: 0,
      'expected-downtime': 0, 'dirty-pages-rate': 0, 'cpu-throttle-percentage': 0, 'postcopy-requests': 0,
    };
  }

  /** The core: the migration from the switchover on. */
  get core(): Core {
    if (this.built === null) {
      throw new PostcopyEmuError('Emulator.core', `precopy is still running (status ${this.status}): the pager, ring, source and guest memory exist from the switchover on; step() or runUntil() further, or run()`);
    }
    return this.built;
  }

  /** True once the core exists (postcopy mode, or precopy has handed over). */
  get switchedOver(): boolean {
    return this.built !== null;
  }

  get memory() { return this.core.memory; }
  get ring() { return this.core.ring; }
  get stream() { return this.core.stream; }
  get backChannel() { return this.core.backChannel; }
  get preempt() { return this.core.preempt; }
  get pager() { return this.core.pager; }
  get source() { return this.core.source; }
  get mapper() { return this.core.mapper; }
  get vcpus() { return this.core.vcpus; }
  get latency() { return this.core.latency; }
  get faults() { return this.core.faults; }
  get recovery() { return this.core.recovery; }
  get livenessViolations() { return this.built?.livenessViolations ?? []; }
  get foreignFaults() { return this.built?.foreignFaults ?? 0; }
  get vcpuFaults() { return this.built?.vcpuFaults ?? 0; }
  /** When the guest ran again at the destination (ns), or −1. */
  get resumedAt() { return this.built?.resumedAt ?? -1; }

  /** When the guest was paused at the source (ns), or −1 if it never was. */
  get pausedAt(): number {
    return this.precopy === null ? 0 : this.precopy.pausedAt;
  }

  /**
   * True once the source has COMPLETE, the guest runs at the destination and every fault put
   * before the last page arrived has been answered.
   */
  get finished(): boolean {
    return this.built?.finished ?? false;
  }

  /** Bytes the core wrote: the stream and the preempt channel. */
  get coreBytes(): number {
    return this.built?.coreBytes ?? 0;
  }

  /** Why a bound (limits.maxEvents, limits.maxEventsPerInstant) stopped the run, or null. */
  get limitReason(): string | null {
    return this.kernel.stopReason;
  }

  /**
   * How the run was cut short before it reached limits.stopAt: by the horizon (its figures are
   * lower bounds) or by a bound that makes it fail; null when it was not.
   */
  get truncated(): { by: 'horizon' | 'limit'; reason: string } | null {
    const limit = this.limitReason;
    if (limit !== null) return { by: 'limit', reason: limit };
    const pre = this.precopy, core = this.built;
    const cut = pre !== null && pre.end === 'horizon'
      ? true
      : core !== null && !core.stopped && core.recovery.failure === null && this.kernel.pending > 0 && this.kernel.nextTime() > this.scenario.limits.horizonNs;
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
    return this.built?.recovery.status ?? 'postcopy-active';
  }

  /** True when the run has reached what limits.stopAt asks for. */
  get stopped(): boolean {
    return this.built?.stopped ?? false;
  }

  /**
   * A foreign accessor (the device model) asks for gfn..gfn+count−1 now, as one page request
   * (count 1) or one range request: the ring id, or EBUSY (−1) when the ring is full. Pages
   * already being paged in are not asked for again, as in Xen; −2 when nothing was missing.
   */
  foreignFault(gfn: number, count = 1): number {
    const pages = this.scenario.memory.pages;
    intArg('Emulator.foreignFault.gfn', gfn, 0, pages - 1);
    intArg('Emulator.foreignFault.count', count, 1, pages - gfn);
    return this.core.foreignFault(gfn, count);
  }

  /** Processes one event; false when the run is over. */
  step(): boolean {
    return this.kernel.step();
  }

  runUntil(t: number): void {
    timeArg('Emulator.runUntil.t', t);
    this.kernel.runUntil(t);
  }

  /**
   * Runs to the end: postcopy complete, the horizon (limits.horizonNs), or nothing left to
   * happen. `onProgress` hears the simulated time every 65 536 events.
   */
  run(onProgress?: (nowNs: number) => void): this {
    argCheck(onProgress === undefined || typeof onProgress === 'function', 'Emulator.run.onProgress', 'must be a function (nowNs: number) => void, or left out');
    const k = this.kernel, horizon = this.scenario.limits.horizonNs;
    k.runTo(horizon, onProgress);
    // Cut by the horizon: the run was watched until then (downtime so far is at least that).
    if (!k.isHalted && k.pending > 0 && horizon > k.now) k.now = horizon;
    return this.settle();
  }

  /**
   * Ends a run that stepped as far as it will go (run() calls it): a precopy the horizon or a
   * bound cut short is closed, with an idle core so every figure reads; the vCPUs stop.
   */
  settle(): this {
    const pre = this.precopy;
    if (this.built === null) {
      // Cut before the handover: the core stays idle (and empty, if precopy had not finished).
      if (pre !== null && !pre.finished) {
        pre.cut(this.kernel.stopReason !== null ? 'limit' : 'horizon');
        this.buildCore(NOTHING, pre.zero);
      } else this.pendingBuild!();
    }
    this.built!.vcpus.stop();
    this.poll?.sample();
    const beyond = this.kernel.beyond;
    if (beyond > 0 && !this.warnings.some((w) => w.startsWith(BEYOND))) {
      this.warnings.push(`${BEYOND}: ${beyond} event${beyond === 1 ? '' : 's'} (a rate or share near zero, or a size near its bound, e.g. preempt.share, devices[].readBytesPerSec)`);
    }
    return this;
  }
}
