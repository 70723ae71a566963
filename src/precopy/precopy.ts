import { argCheck, objArg } from '../io/args.ts';
import { Kernel } from '../kernel/kernel.ts';
import { Rng } from '../kernel/rng.ts';
import { Link } from '../link/link.ts';
import { FRESH, type Alloc } from '../memory/arena.ts';
import { drawZeroSet } from '../memory/guest-memory.ts';
import { popcount32, type NextMember } from '../memory/skip-list.ts';
import type { Scenario } from '../scenario/schema.ts';
import { RECORD_HEADER_BYTES, pageDataBytes, qemuPagesBytes } from '../stream/records.ts';
import type { Devices } from '../devices/devices.ts';
import { Convergence } from './convergence.ts';
import { DirtyClear } from './dirty-clear.ts';
import { DirtyLog } from './dirty-log.ts';
import { makeDirtier, type Dirtier } from './dirtying.ts';
import { Multifd } from './multifd.ts';
import { SendSet } from './send-set.ts';

const enum Phase {
  ITERATE,
  STOP_COPY,
  DONE,
}

/** Why precopy ended. */
export type PrecopyEnd = 'converged' | 'max-iterations' | 'max-time' | 'switch' | 'horizon' | 'limit';

/** QEMU's status while precopy runs; `device` once the guest is paused for stop-and-copy. */
export type PrecopyStatus = 'setup' | 'active' | 'device' | 'postcopy-active' | 'completed';

/** Stop-and-copy milestones (ns, −1 until reached): devices stopped, RAM sent, device data sent, the wire drained. */
export interface StopMilestones {
  devicesStopped: number;
  ramSent: number;
  devicesSent: number;
  drained: number;
}

/** What precopy tells its owner as it goes. */
export interface PrecopyHooks {
  /** The status changed (setup → active → device, or → postcopy-active at the hybrid switch). */
  status(status: PrecopyStatus): void;
  /** A dirty-bitmap sync at `at`: `fresh` pages joined the set to send, `remaining` are left in it. */
  synced(at: number, fresh: number, remaining: number): void;
  /** Precopy's last byte is on the wire at `startAt`: the core takes over then. */
  done(startAt: number): void;
}

/**
 * The source's migration thread before the switchover (docs/lifecycle.md): setup and a first
 * dirty-bitmap sync, then passes over the dirty set in the scan order, rate-limited in 100 ms
 * windows; QEMU syncs the bitmap whenever what is left falls below the threshold and completes
 * when it stays below, Xen syncs after each pass and stops at ≤ 50 dirty pages or 5 passes. The
 * end is stop-and-copy (guest paused, the rest sent) or, in hybrid mode, the switch to postcopy:
 * what is still dirty becomes the core's outstanding set. Runs on the emulator's kernel; `hooks`
 * hear its status, syncs and when the core takes over (`startAt`).
 */
export class Precopy {
  /** QEMU's migration bitmap: pages to send in this pass. */
  readonly toSend: NextMember;
  /** The bitmaps and the scan cursor. */
  private readonly sendSet: SendSet;
  remaining: number;
  /** One bit per page: written since it was last sent (the destination's copy is old). */
  private readonly stale: Uint32Array;
  readonly zero: NextMember | null;
  readonly log: DirtyLog;
  /** QEMU's lazy clear of the log (null: not modelled); the source goes on with it after the switch. */
  readonly clear: DirtyClear | null;
  readonly convergence: Convergence;
  readonly stream: Link;
  readonly multifd: Multifd | null;
  private readonly dirtier: Dirtier;
  private readonly p: Scenario['precopy'];
  private readonly s: Scenario;
  private readonly stepKind: number;
  private dirtiedTo = 0;
  private phase = Phase.ITERATE;
  private justSynced = false;
  status: PrecopyStatus = 'setup';
  end: PrecopyEnd | null = null;
  /** The switch to postcopy happened (hybrid): the core takes over the dirty pages. */
  postcopy = false;
  setupNs = 0;
  syncs = 0;
  /** Xen: passes completed. */
  passes = 0;
  bytes = 0;
  pagesSent = 0;
  normalPages = 0;
  zeroPages = 0;
  /** Main-channel bytes sent while the guest ran at the source (QEMU's precopy-bytes). */
  precopyBytes = 0;
  /** Main-channel bytes sent while it was paused (QEMU's downtime-bytes). */
  downtimeBytes = 0;
  pausedAt = -1;
  /** When the core takes over: every precopy byte is on the wire. */
  startAt = -1;
  /** Pages sent before the switch and dirtied since: the destination's copy is stale. */
  discardedPages = 0;
  /** Runs of dirty pages the destination discards at the switch, and the pages they span. */
  discardRanges = 0;
  discardSpan = 0;

  /** Stop-and-copy milestones for the downtime breakdown. */
  readonly stopAt: StopMilestones = { devicesStopped: -1, ramSent: -1, devicesSent: -1, drained: -1 };
  private dmaTo = 0;

  constructor(scenario: Scenario, private readonly kernel: Kernel, private readonly hooks: PrecopyHooks, private readonly devices: Devices | null = null, alloc: Alloc = FRESH) {
    objArg('Precopy.scenario', scenario, 'a parsed scenario (parseScenario(input))');
    argCheck(kernel instanceof Kernel, 'Precopy.kernel', 'must be the run\'s Kernel');
    objArg('Precopy.hooks', hooks, 'the object that hears precopy\'s events (PrecopyHooks)');
    const s = (this.s = scenario), pages = s.memory.pages, k = kernel;
    this.p = s.precopy;
    this.sendSet = new SendSet(pages);
    this.toSend = this.sendSet.toSend;
    this.stale = this.sendSet.stale;
    this.remaining = pages;
    this.zero = drawZeroSet(pages, s.memory.zeroFraction, new Rng(s.seed, 'zero-pages'), s.memory.zeroRanges, alloc);
    this.log = new DirtyLog(pages, this.zero, this.stale);
    this.clear = DirtyClear.of(s);
    this.dirtier = makeDirtier(s, k.work, alloc);
    if (this.zero !== null) this.dirtier.prime(this.zero);
    this.convergence = new Convergence(this.p, 0);
    this.stream = new Link(s.link);
    this.multifd = s.multifd.channels > 0 ? new Multifd(s, this.stream) : null;
    this.stepKind = k.register(() => this.step());
    // Setup: channels and bitmaps, then the first sync (every page starts dirty: ram_init_bitmaps).
    this.setupNs = this.p.setupNs + this.syncCost(0);
    this.syncs = 1;
    if (devices === null) k.at(this.setupNs, this.stepKind);
    else {
      // Every device with PRE_COPY enters it (vfio_save_setup) beside RAM's bitmaps: at time 0,
      // on the clock, so the `device` event reports those arcs too.
      k.at(0, k.register(() => {
        this.setupNs += devices.setup(0);
        k.at(this.setupNs, this.stepKind);
      }));
    }
  }

  /** The run ended before precopy did: by the horizon (the guest wrote until then) or a bound. */
  cut(why: 'horizon' | 'limit'): void {
    this.end = why;
    if (why === 'horizon') this.applyDirtying(this.kernel.now);
  }

  get finished(): boolean {
    return this.phase === Phase.DONE;
  }

  /** Iterations in QEMU's sense: bitmap syncs after setup's. */
  get iterations(): number {
    return this.p.policy === 'xen' ? this.passes : this.syncs - 1;
  }

  get pageSize(): number {
    return this.s.memory.pageSize;
  }

  /** The writes the guest made since the last look, up to `t` (none once it is paused). */
  private applyDirtying(t: number): void {
    if (this.pausedAt >= 0 || t <= this.dirtiedTo) return;
    this.dirtier.advance(this.dirtiedTo, t, this.convergence.runShare, this.log);
    this.dirtiedTo = t;
  }

  /** Walks the log and write-protects each dirty page again (unless the lazy clear does it). */
  private syncCost(dirty: number): number {
    return Math.round(this.s.memory.pages * this.p.syncPerPageNs) + (this.clear === null ? dirty * this.p.syncPerDirtyPageNs : 0);
  }

  /** Dirty-bitmap sync at `now`: the log's pages join the bitmap. Returns its cost. */
  private sync(now: number, final = false): number {
    this.applyDirtying(now);
    const dev = this.devices;
    let extra = 0;
    if (dev !== null) {
      // DMA goes on while the guest is paused, until each device is quiesced.
      dev.dmaAdvance(this.dmaTo, now, this.log, this.stale);
      this.dmaTo = now;
      extra = dev.dmaSync(now, this.log, final);
    }
    const dirty = this.log.count, toSend = this.toSend;
    let fresh = 0;
    const clear = this.clear;
    this.log.drain((w, bits) => {
      clear?.dirtied(w, bits);
      const add = bits & ~toSend.word(w);
      if (add === 0) return;
      toSend.addBits(w, add);
      fresh += popcount32(add);
    });
    this.remaining += fresh;
    this.syncs++;
    this.hooks.synced(now, fresh, this.remaining);
    this.convergence.synced(now, fresh, this.remaining * this.pageSize, this.bytes, this.pageSize);
    return this.syncCost(dirty) + extra;
  }

  private schedule(t: number): void {
    this.kernel.at(Math.ceil(t), this.stepKind);
  }

  private step(): void {
    const now = this.kernel.now;
    if (this.status === 'setup') this.setStatus('active');
    if (this.phase === Phase.ITERATE) {
      const c = this.convergence;
      c.update(now, this.bytes, this.pagesSent);
      const cap = this.capReached(now);
      // QEMU switches to postcopy only with data pending at or above the threshold
      // (`migration_iteration_run`: `pending_size && pending_size >= threshold_size`); with none,
      // or less, it completes as precopy, switch asked or not.
      if (cap !== null && !(cap === 'switch' && this.p.policy !== 'xen' && this.belowThreshold(now))) return this.stop(now, cap);
      if (this.p.policy === 'xen') {
        if (this.remaining === 0) return this.endPass(now);
      } else {
        const dev = this.devices, ram = this.remaining * this.pageSize;
        // pending_estimate (devices: initial + dirty bytes) at or below the threshold: sync for
        // the exact figure (costs time; devices add their stop-copy size), then decide.
        if (this.pendingEstimate(now) <= c.threshold && !this.justSynced) {
          this.justSynced = true;
          return this.schedule(now + this.sync(now));
        }
        this.justSynced = false;
        if (dev === null ? this.remaining === 0 || ram < c.threshold : ram + dev.exact(now) < c.threshold) {
          // switchover-ack: not before the destination has loaded every device's initial data.
          if (dev === null || dev.acked(now)) return this.stop(now, 'converged');
        }
        if (dev !== null) {
          // The devices' turn: one read each of their precopy data, on the wire RAM uses.
          if (dev.turnDue(now)) return this.schedule(this.stream.writableAt(dev.turn(now, this.deviceWire)));
          // Nothing to send: look again at the next turn, the ack or the next bandwidth window.
          if (this.remaining === 0) {
            const turn = dev.nextTurnAt(now);
            return this.schedule(Math.min(c.windowEnd, turn > now ? turn : Infinity, dev.ackTime > now ? dev.ackTime : Infinity));
          }
        }
      }
      if (c.budget(this.bytes) <= 0) return this.schedule(c.windowEnd);
    } else if (this.remaining === 0) {
      this.stopAt.ramSent = now;
      return this.finish(this.devices ? this.devices.stopCopy(now, this.deviceWire) : now);
    }
    this.sendChunk(now);
  }

  /**
   * Device data goes on the main channel, or on a multifd channel (newer QEMU). It counts in
   * QEMU's transferred bytes (and so in the bandwidth and the rate limit), not in precopy-bytes.
   */
  private readonly deviceWire = (t: number, bytes: number): number => {
    if (this.s.migration.deviceChannel === 'main') {
      this.count(bytes, false);
      return this.stream.sendRead(t, bytes);
    }
    // A device-state packet: its own header, counted in multifd-bytes as QEMU does.
    const packet = bytes + this.s.multifd.packetHeaderBytes;
    this.count(packet, false);
    return this.multifd!.sendBytes(t, packet);
  };

  /** QEMU's pending estimate: RAM left, devices' initial and dirty bytes. */
  private pendingEstimate(now: number): number {
    return this.remaining * this.pageSize + (this.devices?.estimate(now) ?? 0);
  }

  /** The pending estimate is nothing or under the threshold. */
  private belowThreshold(now: number): boolean {
    const pending = this.pendingEstimate(now);
    return pending === 0 || pending < this.convergence.threshold;
  }

  /** A cap, or the hybrid switch, that ends precopy now. */
  private capReached(now: number): PrecopyEnd | null {
    const p = this.p, m = this.s.migration;
    if (p.maxTimeNs > 0 && now >= p.maxTimeNs) return 'max-time';
    if (p.maxIterations > 0 && this.iterations >= p.maxIterations) return 'max-iterations';
    if (m.mode === 'hybrid' && m.switchAtNs !== undefined && now >= m.switchAtNs) return 'switch';
    if (m.mode === 'hybrid' && m.switchAfterIterations > 0 && this.iterations >= m.switchAfterIterations) return 'switch';
    return null;
  }

  /** Xen: a pass is over; sync and apply the policy (≤ 50 dirty pages, or 5 passes). */
  private endPass(now: number): void {
    this.passes++;
    const cost = this.sync(now);
    if (this.remaining <= this.p.xenDirtyThreshold) return this.stop(now + cost, 'converged');
    if (this.passes >= this.p.xenMaxIterations) return this.stop(now + cost, 'max-iterations');
    this.schedule(now + cost);
  }

  /**
   * Sends the next pages in scan order: a 64-page record on the main channel, or a packet to a
   * multifd channel. Zero pages found by the migration thread go on the main channel as a
   * header each; a multifd packet then carries data pages only. Without channels QEMU checks
   * for zero pages in the migration thread even when detection is `multifd`.
   */
  private sendChunk(now: number): void {
    const s = this.s, src = s.source, mf = this.multifd, pages = s.memory.pages;
    const detect = src.zeroPageDetection;
    const inChannel = mf !== null && detect === 'multifd';
    const inThread = detect === 'legacy' || (detect === 'multifd' && mf === null);
    const max = mf ? s.multifd.packetPages : src.recordPages;
    const dataOnly = mf !== null && inThread;
    const set = this.sendSet;
    const first = this.toSend.next(set.cursor);
    if (first >= pages) {
      // A round is complete: QEMU syncs the multifd channels and scans from the start again.
      set.cursor = 0;
      return this.schedule(mf ? this.syncChannels(now) : now);
    }
    const n = set.take(max, dataOnly, detect === 'none' ? null : this.zero), zeros = set.takenZeros;
    this.remaining -= n;
    if (this.remaining < 0) throw new Error(`invariant: precopy sent ${-this.remaining} pages more than were dirty`);
    this.pagesSent += n;
    this.zeroPages += zeros;
    this.normalPages += n - zeros;
    // The migration thread: bookkeeping per page, and the zero check when it does detection.
    let t = now + n * this.p.scanPageNs + (inThread ? zeros * src.zeroCheckNs : 0) + (this.clear?.sendRange(first, set.cursor) ?? 0);
    if (mf === null) {
      // QEMUFile gathers pages and flushes one writev per 64 iovecs (32 data pages: a header and the data
      // each; the chunk here is recordPages); zero-page headers just fill its buffer.
      t += Math.round((src.perRecordNs * (n - zeros)) / src.recordPages) + (n - zeros) * src.perPageNs;
      this.sendMain(t, n - zeros, zeros);
      return this.schedule(this.stream.writableAt(t));
    }
    if (inThread && zeros > 0) this.sendMain(t, 0, zeros);
    if (n - zeros > 0 || inChannel) {
      // QEMU's multifd_send_pages: the packet is filled while the channels send; only now does the
      // thread wait for an idle one (`channels_ready`), hand the packet over and go back to filling.
      t = Math.max(t, mf.idleAt()) + s.multifd.handoffNs;
      this.count(mf.send(t, n - zeros, inChannel ? zeros : 0), false);
    }
    this.schedule(t);
  }

  /** Counts bytes sent: QEMU's precopy and downtime bytes are the main channel's only. */
  private count(bytes: number, main: boolean): void {
    this.bytes += bytes;
    if (!main) return;
    if (this.pausedAt < 0) this.precopyBytes += bytes;
    else this.downtimeBytes += bytes;
  }

  /** Every channel flushes and sends SYNC; returns when all are done. */
  private syncChannels(now: number): number {
    const mf = this.multifd!, before = mf.bytes;
    const t = mf.sync(now);
    this.count(mf.bytes - before, false);
    return t;
  }

  private sendMain(t: number, normal: number, zeros: number): void {
    const ps = this.pageSize;
    this.writeMain(t, this.p.policy === 'xen' ? pageDataBytes(normal + zeros, ps, zeros) : qemuPagesBytes(normal, zeros, ps));
  }

  /** Writes on the main channel; the destination reads at once (precopy loads need no pager). */
  private writeMain(t: number, bytes: number): void {
    this.stream.sendRead(t, bytes);
    this.count(bytes, true);
  }

  /**
   * Ends the live phase at `now`: the guest is paused, a last sync collects what it dirtied,
   * then stop-and-copy sends the rest, or (hybrid, not converged) postcopy takes it over.
   */
  private stop(now: number, why: PrecopyEnd): void {
    const dev = this.devices;
    // hot-unplug (seed 003): the guest gives its devices up first, while precopy goes on.
    const gone = dev?.unplug(now) ?? now;
    if (gone > now) {
      // The next check after `gone` ends precopy (or it iterates on, if it no longer converges);
      // meanwhile RAM goes on within the rate limit.
      const c = this.convergence;
      if (this.toSend.next(0) >= this.s.memory.pages) return this.schedule(gone);
      return c.budget(this.bytes) <= 0 ? this.schedule(Math.min(gone, c.windowEnd)) : this.sendChunk(now);
    }
    this.end = why;
    this.applyDirtying(now);
    this.pausedAt = now;
    const hybrid = this.s.migration.mode === 'hybrid' && why !== 'converged';
    if (!hybrid) this.setStatus('device');
    // Every device is quiesced, then stopped, before the final sync.
    const stopped = dev ? dev.stop(now) : now;
    this.stopAt.devicesStopped = stopped;
    const t = stopped + this.sync(stopped, true);
    if (hybrid) {
      this.postcopy = true;
      const sent = (this.stopAt.ramSent = this.countDiscards(t));
      return this.finish(dev ? dev.stopCopy(sent, this.deviceWire) : sent);
    }
    this.phase = Phase.STOP_COPY;
    this.sendSet.cursor = 0;
    this.schedule(t);
  }

  /**
   * The destination drops its copy of every page still dirty. QEMU sends the dirty runs as
   * discard ranges (16 bytes each, 12 per message); Xen's POSTCOPY_PFNS records already list
   * them. Counts the pages the destination held an older copy of; returns when the thread is done.
   */
  private countDiscards(now: number): number {
    let prev = -2;
    for (let g = this.toSend.next(0); g < this.s.memory.pages; g = this.toSend.next(g + 1)) {
      if (g !== prev + 1) this.discardRanges++;
      prev = g;
      if (this.sentBefore(g)) this.discardedPages++;
    }
    // The ranges are the pages still to send.
    this.discardSpan = this.remaining;
    if (this.discardRanges === 0 || this.p.policy === 'xen') return now;
    this.writeMain(now, this.discardRanges * 16 + Math.ceil(this.discardRanges / 12) * RECORD_HEADER_BYTES);
    return this.stream.writableAt(now);
  }

  /** Everything precopy had to send is on the wire: the core starts. */
  private finish(now: number): void {
    const mf = this.multifd;
    this.stopAt.devicesSent = now;
    const synced = mf ? this.syncChannels(now) : now;
    this.startAt = this.stopAt.drained = Math.max(synced, this.stream.busyUntil, mf ? mf.drainedAt() : 0);
    // The destination's devices must have loaded their state and be running again.
    if (this.devices) this.startAt = Math.max(this.startAt, this.devices.start());
    this.phase = Phase.DONE;
    if (this.postcopy) this.setStatus('postcopy-active');
    this.hooks.done(this.startAt);
  }

  private setStatus(status: PrecopyStatus): void {
    this.status = status;
    this.hooks.status(status);
  }

  /** Whether page g was sent at least once. */
  sentBefore(g: number): boolean {
    return this.sendSet.sentBefore(g);
  }

  /** Pages the destination holds older data of than the source, outside the pages still to send. */
  staleOutside(): number {
    return this.sendSet.staleOutside();
  }
}
