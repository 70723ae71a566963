import { argCheck, numArg, objArg } from '../io/args.ts';
import { Rng } from '../kernel/rng.ts';
import { UNBOUNDED, type WorkBudget } from '../kernel/work.ts';
import type { DirtyLog } from '../precopy/dirty-log.ts';
import { deviceDefaults, deviceName, type ResolvedDevice } from '../scenario/devices-schema.ts';
import type { Scenario } from '../scenario/schema.ts';
import { DmaWriter } from './dma.ts';
import { DeviceFsm, DeviceState as S } from './fsm.ts';
import { LoadThreads } from './load.ts';

/** QEMU's `ram_save_iterate` yields after 50 ms (`MAX_WAIT`); then each device's `save_live_iterate` reads once. */
export const DEVICE_TURN_NS = 50_000_000;
/** QEMU counts a device whose stop-copy size query failed as 100 GiB (`VFIO_MIG_STOP_COPY_SIZE`). */
export const FAILED_QUERY_BYTES = 100 * 2 ** 30;

/** What a chunk of device data is: precopy data, stop-copy data, or the stop-copy's last chunk. */
const enum Chunk {
  PRECOPY,
  STOP_COPY,
  LAST,
}

/** Where device data goes: the main channel or a multifd channel; returns its arrival. */
export type DeviceWire = (now: number, bytes: number) => number;

/** One device on both sides of the migration (not per page: a handful per VM). */
export class Device {
  readonly src: DeviceFsm;
  readonly dst: DeviceFsm;
  readonly dma: DmaWriter | null;
  /** Partial contexts: initial bytes not read yet. */
  initialLeft = 0;
  /** Dirty bytes accrued and not read, up to `dirtyAt`. */
  private dirty = 0;
  private dirtyAt = 0;
  /** Whole-context devices: bytes of the fetched context not read out yet. */
  private buffered = 0;
  /** Device calls that fetched data (what `pacing` counts). */
  calls = 0;
  /** rate-limit: no data until then. */
  private quietUntil = 0;
  /** Initial bytes (the first context, for whole-context devices) still to arrive at the destination. */
  initialToLoad: number;
  initialLoadedAt = -1;
  /** The destination allocated the device's resources (seed 000's warm-up). */
  warmed = false;
  precopyBytes = 0;
  stopCopyBytes = 0;
  reads = 0;
  /** hot-unplug: when the guest gave the device up (−1: not asked). */
  unpluggedAt = -1;
  loadedAt = -1;

  constructor(readonly spec: ResolvedDevice, readonly name: string, i: number, s: Scenario, work: WorkBudget = UNBOUNDED) {
    objArg('Device.spec', spec, 'a device section with its defaults (deviceDefaults(parseScenario(input).devices[i]))');
    objArg('Device.scenario', s, 'a parsed scenario (parseScenario(input))');
    const field = `devices.${i}`;
    this.src = new DeviceFsm(spec.kind, spec.arcNs, spec.preCopy, field);
    // The destination's device waits in STOP for a state to resume.
    this.dst = new DeviceFsm(spec.kind, spec.arcNs, spec.preCopy, field, S.STOP);
    this.dma = spec.dma ? new DmaWriter(spec.dma, s.memory.pageSize, s.memory.pages, new Rng(s.seed, `dma-${i}`), work) : null;
    this.initialToLoad = this.migrates && spec.preCopy ? (spec.partialContexts ? spec.initialBytes : spec.stopCopyBytes) : 0;
  }

  /** Whether the device's state travels (VFIO migration), or the guest gives it up (hot-unplug). */
  get migrates(): boolean {
    return this.spec.stopBy === 'vfio';
  }

  /** When the destination's device works again after a hot-unplug: resumed, then plugged or reset. */
  outageEnd(resumedAt: number): number {
    return resumedAt + (this.spec.startBy === 'hotplug' ? this.spec.hotplugNs : this.spec.startBy === 'reset' ? this.spec.resetNs : 0);
  }

  private accrue(now: number): void {
    if (now > this.dirtyAt && this.src.state === S.PRE_COPY) this.dirty += ((now - this.dirtyAt) / 1e9) * this.spec.dirtyBytesPerSec;
    this.dirtyAt = now;
  }

  /** Whether the driver lets a new device call return data now (seed 000's pacing). */
  private paced(now: number): boolean {
    const p = this.spec.pacing;
    return p === 'none' || (p === 'cap' ? this.calls < this.spec.maxCalls : now >= this.quietUntil);
  }

  /** The driver will return no more precopy data (its cap is reached): it reports 0 initial bytes. */
  get exhausted(): boolean {
    return this.spec.pacing === 'cap' && this.calls >= this.spec.maxCalls && this.buffered === 0;
  }

  /** When the device has precopy data to read: now, when a rate-limited one's quiet ends, or never (Infinity). */
  dataAt(now: number): number {
    if (this.pending(now) > 0) return now;
    const more = !this.spec.partialContexts || this.initialLeft > 0 || this.spec.dirtyBytesPerSec > 0;
    return this.src.state === S.PRE_COPY && this.migrates && this.spec.pacing === 'rate-limit' && more ? this.quietUntil : Infinity;
  }

  /** The precopy info QEMU reads: initial + dirty bytes (0 outside PRE_COPY or while the driver holds back). */
  pending(now: number): number {
    if (this.src.state !== S.PRE_COPY || !this.migrates) return 0;
    this.accrue(now);
    if (!this.spec.partialContexts) return this.buffered > 0 ? this.buffered : this.paced(now) ? this.spec.stopCopyBytes : 0;
    const left = this.initialLeft + Math.floor(this.dirty);
    return left > 0 && this.paced(now) ? left : 0;
  }

  /** One read() of the data fd in PRE_COPY: the bytes it returns (≤ a chunk). */
  readPrecopy(now: number): number {
    const sp = this.spec, chunk = sp.readChunkBytes;
    if (this.pending(now) === 0) return 0;
    let n: number;
    if (!sp.partialContexts) {
      if (this.buffered === 0) {
        this.fetched(now);
        this.buffered = sp.stopCopyBytes;
      }
      n = Math.min(chunk, this.buffered);
      this.buffered -= n;
    } else {
      this.fetched(now);
      n = Math.min(chunk, this.initialLeft + Math.floor(this.dirty));
      const fromInitial = Math.min(n, this.initialLeft);
      this.initialLeft -= fromInitial;
      this.dirty -= n - fromInitial;
    }
    this.reads++;
    this.precopyBytes += n;
    return n;
  }

  private fetched(now: number): void {
    this.calls++;
    if (this.spec.pacing === 'rate-limit') this.quietUntil = now + this.spec.readIntervalNs;
  }

  /** Thread time of reading `bytes` from the device. */
  readNs(bytes: number): number {
    return this.spec.readCallNs + Math.ceil((bytes / this.spec.readBytesPerSec) * 1e9);
  }

  /** What the stop-copy size query answers. */
  get stopCopySize(): number {
    return this.spec.sizeQueryFails ? FAILED_QUERY_BYTES : this.spec.stopCopyBytes;
  }
}

/**
 * The VM's passthrough devices (migration uAPI v2, shared/reference/migration.md §3): precopy data
 * read by the migration thread between RAM's turns and sent on the shared wire, the destination's
 * loads (warm-up while RAM iterates), switchover-ack, the stop arcs (every device quiesced before
 * any is stopped: P2P), the stop-copy data and the final load, and each device's DMA into guest
 * memory with its dirty tracking. Precopy calls it; it schedules nothing of its own.
 */
export class Devices {
  readonly list: Device[];
  private readonly load: LoadThreads;
  private nextTurn = 0;
  /** When the destination's ack of every device's initial data reaches the source (Infinity: not yet). */
  private ackAt = Infinity;
  /** Stop-copy timestamps for the downtime breakdown (ns). */
  stopArcsNs = 0;
  stopCopyThreadNs = 0;
  readyAt = 0;
  private readonly ackNeeded: boolean;

  /** `work`: the run's bound on work inside events (Kernel.work), for the devices' DMA. */
  constructor(s: Scenario, private readonly backLatencyNs: number, work: WorkBudget = UNBOUNDED) {
    objArg('Devices.scenario', s, 'a parsed scenario (parseScenario(input))');
    numArg('Devices.backLatencyNs', backLatencyNs, 0, Number.MAX_SAFE_INTEGER);
    this.list = s.devices.map((d, i) => new Device(deviceDefaults(d), deviceName(d, i), i, s, work));
    this.load = new LoadThreads(s.migration.deviceLoadThreads);
    this.ackNeeded = s.migration.switchoverAck && this.list.some((d) => d.initialToLoad > 0);
  }

  /** Setup: devices with PRE_COPY enter it, the destination's devices enter RESUMING. Returns the thread's cost. */
  setup(now: number): number {
    let t = now;
    for (const d of this.list) {
      if (!d.migrates) continue;
      d.dst.request(S.RESUMING, now);
      if (!d.spec.preCopy) continue;
      t += d.src.request(S.PRE_COPY, t);
      d.initialLeft = d.spec.partialContexts ? d.spec.initialBytes : 0;
    }
    this.nextTurn = t;
    return t - now;
  }

  /** DMA writes over [from, to) into the stale set; the tracking decides what reaches the log. */
  dmaAdvance(from: number, to: number, log: DirtyLog, stale: Uint32Array): void {
    for (const d of this.list) d.dma?.advance(from, to, log, stale);
  }

  /** A dirty sync: each device's tracking reports into the log; returns the extra cost. */
  dmaSync(now: number, log: DirtyLog, final: boolean): number {
    let ns = 0;
    for (const d of this.list) if (d.dma) ns += d.dma.sync(now, log, final);
    return ns;
  }

  /** Whether the migration thread owes the devices a turn now. */
  turnDue(now: number): boolean {
    return now >= this.nextTurn && this.list.some((d) => d.pending(now) > 0);
  }

  /** A turn: one read per device with data, each sent as it is read. Returns when the thread is free. */
  turn(now: number, wire: DeviceWire): number {
    let t = now;
    for (const d of this.list) {
      const n = d.readPrecopy(t);
      if (n === 0) continue;
      t += d.readNs(n);
      this.arrive(d, wire(t, n), n, Chunk.PRECOPY);
    }
    this.nextTurn = now + DEVICE_TURN_NS;
    return t;
  }

  /** The earliest time a turn could find data (Infinity: none will). */
  nextTurnAt(now: number): number {
    let data = Infinity;
    for (const d of this.list) data = Math.min(data, d.dataAt(now));
    return Math.max(this.nextTurn, data);
  }

  /** Data of device d arrived at the destination: its load thread takes it. */
  private arrive(d: Device, arrival: number, bytes: number, chunk: Chunk): void {
    const last = chunk === Chunk.LAST;
    let cost = Math.ceil(bytes * d.spec.load.perByteNs);
    if (!d.warmed) {
      // The first data allocates the device's resources: in precopy that is seed 000's warm-up.
      d.warmed = true;
      cost += d.spec.load.setupNs;
    }
    if (last) cost += d.spec.load.applyNs;
    const done = this.load.load(arrival, cost);
    if (last) d.loadedAt = done;
    else if (chunk === Chunk.PRECOPY && d.initialToLoad > 0) {
      // A capped driver reports 0 initial bytes once it stops giving data: QEMU's INIT_DATA_SENT.
      d.initialToLoad = d.exhausted ? 0 : Math.max(0, d.initialToLoad - bytes);
      if (d.initialToLoad === 0) {
        d.initialLoadedAt = done;
        this.maybeAck();
      }
    }
  }

  private maybeAck(): void {
    if (!this.ackNeeded || this.list.some((d) => d.initialToLoad > 0)) return;
    // The destination sends SWITCHOVER_ACK on the return path once every initial load is done.
    this.ackAt = Math.max(...this.list.map((d) => d.initialLoadedAt)) + this.backLatencyNs;
  }

  /** switchover-ack: whether the source may stop the guest now; `ackAt` says when it may. */
  acked(now: number): boolean {
    return !this.ackNeeded || now >= this.ackAt;
  }

  /** When the ack will arrive (Infinity while initial data is still to read or load). */
  get ackTime(): number {
    return this.ackNeeded ? this.ackAt : 0;
  }

  /** QEMU's pending estimate: initial + dirty bytes of the devices in PRE_COPY. */
  estimate(now: number): number {
    let b = 0;
    for (const d of this.list) b += d.pending(now);
    return b;
  }

  /** The exact query: the stop-copy size on top (a failed query counts as 100 GiB). */
  exact(now: number): number {
    let b = 0;
    for (const d of this.list) if (d.migrates) b += d.pending(now) + d.stopCopySize;
    return b;
  }

  /** hot-unplug devices still plugged: asks the guest at `now`; returns when all are gone (≤ now: none left). */
  unplug(now: number): number {
    let at = now;
    for (const d of this.list) {
      if (d.spec.stopBy !== 'hot-unplug') continue;
      if (d.unpluggedAt < 0) {
        d.unpluggedAt = now + d.spec.unplugNs;
        // The driver unmaps every buffer on unplug: its DMA pages become visible (seed 003).
        d.dma?.stop(d.unpluggedAt, true);
      }
      at = Math.max(at, d.unpluggedAt);
    }
    return at;
  }

  /**
   * The guest is paused: every migrating device stops outgoing DMA (→ *_P2P) before any is
   * stopped (→ STOP / STOP_COPY), each arc a device command on the migration thread. Returns when done.
   */
  stop(now: number): number {
    let t = now;
    for (const d of this.list) {
      if (!d.migrates) continue;
      t += d.src.request(d.src.state === S.PRE_COPY ? S.PRE_COPY_P2P : S.RUNNING_P2P, t);
      d.dma?.stop(t, false);
    }
    for (const d of this.list) if (d.migrates) t += d.src.request(S.STOP_COPY, t);
    this.stopArcsNs = t - now;
    return t;
  }

  /**
   * Stop-and-copy: each device's stop-copy data read in chunks and sent. Returns when the thread
   * is done; each device goes STOP_COPY → STOP after that, at cleanup (`vfio_save_cleanup`, QEMU
   * 8.1+: "after migration has completed, so it won't increase downtime"; on a ConnectX-7 the arc
   * was up to 6 % of the downtime before the move).
   */
  stopCopy(now: number, wire: DeviceWire): number {
    let t = now;
    for (const d of this.list) {
      if (!d.migrates) continue;
      let left = d.spec.stopCopyBytes;
      do {
        const n = Math.min(left, d.spec.readChunkBytes);
        t += d.readNs(n);
        left -= n;
        d.stopCopyBytes += n;
        d.reads++;
        this.arrive(d, wire(t, n), n, left === 0 ? Chunk.LAST : Chunk.STOP_COPY);
      } while (left > 0);
    }
    this.stopCopyThreadNs = t - now;
    let cleanup = t;
    for (const d of this.list) if (d.migrates) cleanup += d.src.request(S.STOP, cleanup);
    return t;
  }

  /**
   * When the destination's devices run: loads done, then RESUMING → RUNNING for each migrated
   * device (all to RUNNING_P2P first); a device the guest gave up comes back by hotplug or reset.
   */
  start(): number {
    let t = this.load.idleAt;
    for (const d of this.list) if (d.migrates) t += d.dst.request(S.RUNNING_P2P, t);
    for (const d of this.list) if (d.migrates) t += d.dst.request(S.RUNNING, t);
    for (const d of this.list) if (!d.migrates) d.dst.reset(t);
    return (this.readyAt = t);
  }

  /** Device data sent, over the whole migration (query-migrate's `vfio.transferred`). */
  get transferred(): number {
    let b = 0;
    for (const d of this.list) b += d.precopyBytes + d.stopCopyBytes;
    return b;
  }
}

/** A device arc, for observers: `time` is when the arc completes (the thread issues it then or earlier). */
export type DeviceArc = { time: number; device: string; side: 'source' | 'destination'; from: string; to: string };

/** Builds the devices of a scenario, or null when it has none; `arc` hears every FSM arc. */
export function makeDevices(s: Scenario, backLatencyNs: number, arc: (e: DeviceArc) => void, work: WorkBudget = UNBOUNDED): Devices | null {
  objArg('makeDevices.scenario', s, 'a parsed scenario (parseScenario(input))');
  numArg('makeDevices.backLatencyNs', backLatencyNs, 0, Number.MAX_SAFE_INTEGER);
  argCheck(typeof arc === 'function', 'makeDevices.arc', 'must be a function that hears each FSM arc');
  if (s.devices.length === 0) return null;
  const dev = new Devices(s, backLatencyNs, work);
  for (const d of dev.list) {
    for (const [side, fsm] of [['source', d.src], ['destination', d.dst]] as const) {
      fsm.onArc = (from, to, at) => arc({ time: at, device: d.name, side, from: S[from]!, to: S[to]! });
    }
  }
  return dev;
}
