import { checkWiring } from '../io/wiring.ts';
import { intArg } from '../io/args.ts';
import type { Kernel } from '../kernel/kernel.ts';
import { Touches } from '../memory/space.ts';
import { Rng } from '../kernel/rng.ts';
import { PageState, type GuestMemory } from '../memory/guest-memory.ts';
import { FaultRing, RequestKind } from '../ring/ring.ts';
import { placementOf, type Scenario } from '../scenario/schema.ts';
import { AccessPattern } from './access.ts';

export const enum VcpuState {
  STOPPED,
  RUNNING,
  /** Paused by Xen until the response to its page-in request (vm_event_vcpu_pause). */
  FAULTED,
  /** Asleep on the ring's wait queue: the ring was full when it faulted. */
  SLEEPING,
  /** Its page arrived but the black-eye rule still holds it until the ring drains. */
  BLOCKED,
  /**
   * Xen: it touched a page another request is paging in. `hvm_hap_nested_page_fault` takes a
   * `p2m_ram_paging_in` page for RAM (a spurious fault): the vCPU re-enters the guest and faults
   * again until `p2m_mem_paging_prep` makes the page present. No ring slot, no pause, no response.
   */
  SPINNING,
}

/** What the vCPUs tell the rest of the destination. */
export interface VcpuHost {
  /** Request `id` was put on the ring. */
  put(id: number): void;
  /** The event channel wakes the pager (after `put`). */
  kick(): void;
  /** vCPU `vcpu` ran again after a fault that began at `since`. */
  resumed(vcpu: number, gfn: number, since: number): void;
  /** The run stopped with vCPU `vcpu` blocked since `since`. */
  stillBlocked(vcpu: number, since: number): void;
  /** vCPU `vcpu` faulted on `gfn`. */
  faulted(vcpu: number, gfn: number): void;
  /** Pages the pager has placed by now become present (a record placed page by page). */
  placeDue(): void;
}

/** Accesses a vCPU runs ahead of the clock in one slice, at most (see docs/architecture.md). */
const SLICE_ACCESSES = 64;

/**
 * Guest vCPUs at the destination. Each runs its access pattern in slices: touches of present
 * pages are applied at once; a touch of a missing page ends the slice and is re-examined at its
 * own time, where it either proceeds (the page arrived meanwhile) or faults into the ring.
 */
export class Vcpus {
  readonly n: number;
  readonly state: Uint8Array;
  private readonly gfn: Int32Array;
  private readonly write: Uint8Array;
  /** The think time after the vCPU's current touch: its stream's, or 0 for a touch driven by hand. */
  private readonly thinkAfter: Float64Array;
  private readonly since: Float64Array;
  /** Generation of each vCPU's scheduled slice: a superseded slice event is ignored. */
  private readonly generation: Float64Array;
  private readonly patterns: AccessPattern[];
  private readonly stepKind: number;
  private readonly prefetch: number;
  private readonly perHostPage: number;
  private readonly idle: boolean;
  /** Xen's fault path (pager.placement hypercall): a touch of a page being paged in spins. */
  private readonly spins: boolean;
  /** vCPUs SPINNING now. */
  spinning = 0;
  /**
   * One bit per page (bit g & 31 of word g >>> 5): set once the guest has touched it, or from the
   * start for a page that was not outstanding (only pages that travel during postcopy count as
   * network or minor).
   */
  private readonly touched: Int32Array;
  private blockedNow = 0;
  private allBlockedSince = -1;
  /** Stats. */
  accesses = 0;
  writes = 0;
  faults = 0;
  /** Faults on a page another request was paging in (SPINNING): no ring request of their own. */
  spurious = 0;
  /** Outstanding pages whose first guest touch had to wait for the network (a vCPU fault). */
  networkPages = 0;
  /** Outstanding pages already present at their first guest touch (pushed in time). */
  minorPages = 0;
  allBlockedNs = 0;
  readonly blockedNs: Float64Array;
  /** vCPUs that were still blocked when the run stopped. */
  readonly blockedAtStop: number[] = [];

  constructor(
    private readonly kernel: Kernel,
    private readonly memory: GuestMemory,
    private readonly ring: FaultRing,
    scenario: Scenario,
    private readonly host: VcpuHost,
  ) {
    checkWiring('Vcpus', kernel, memory, scenario, host, ['ring', ring, FaultRing, 'the FaultRing its faults go to']);
    const w = scenario.workload;
    this.n = w.vcpus;
    this.state = new Uint8Array(this.n);
    this.gfn = new Int32Array(this.n).fill(-1);
    this.write = new Uint8Array(this.n);
    this.thinkAfter = new Float64Array(this.n);
    this.since = new Float64Array(this.n);
    this.generation = new Float64Array(this.n);
    this.blockedNs = new Float64Array(this.n);
    // Built before the run: the outstanding pages are exactly the unasked ones (none is touched
    // when every page is: no pass over the words).
    this.touched = memory.space.int32((memory.pages + 31) >>> 5);
    if (memory.outstandingAtStart < memory.pages) memory.unasked.complementInto(this.touched);
    const rngs = Array.from({ length: this.n }, (_, v) => new Rng(scenario.seed, `vcpu${v}`));
    this.patterns = rngs.map((rng, v) => new AccessPattern(scenario, v, rng, memory.space));
    this.prefetch = w.prefetchPages;
    this.perHostPage = (scenario.memory.hostPageSize ?? scenario.memory.pageSize) / scenario.memory.pageSize;
    this.idle = w.kind === 'idle';
    this.spins = placementOf(scenario) === 'hypercall';
    this.stepKind = kernel.register((arg) => {
      const v = arg % this.n;
      if ((arg - v) / this.n === this.generation[v]) this.step(v);
    });
  }

  /** The guest is unpaused at the destination. */
  start(): void {
    for (let v = 0; v < this.n; v++) {
      this.state[v] = VcpuState.RUNNING;
      if (!this.idle) this.schedule(v, this.kernel.now);
    }
  }

  /** Stops every vCPU (the run is over); accounts blocked time up to now. */
  stop(): void {
    for (let v = 0; v < this.n; v++) {
      if (this.isBlocked(v)) {
        if (this.state[v] === VcpuState.SPINNING) this.spinning--;
        this.blockedAtStop.push(v);
        this.host.stillBlocked(v, this.since[v]!);
        this.unblock(v);
      }
      this.state[v] = VcpuState.STOPPED;
    }
  }

  /**
   * vCPU v touches gfn now (library API: drive faults by hand). Returns true if the page was
   * present and the touch done, false if the vCPU faulted (or is not running).
   */
  touch(v: number, gfn: number, write: boolean): boolean {
    intArg('Vcpus.touch.vcpu', v, 0, this.n - 1);
    intArg('Vcpus.touch.gfn', gfn, 0, this.memory.pages - 1);
    if (this.state[v] !== VcpuState.RUNNING) return false;
    this.host.placeDue();
    if (this.memory.state[gfn] === PageState.READY) {
      this.firstTouch(gfn, false);
      this.accesses++;
      if (write) {
        this.memory.write(gfn);
        this.writes++;
      }
      return true;
    }
    this.thinkAfter[v] = 0;
    this.fault(v, gfn, write);
    return false;
  }

  /** vCPUs blocked right now (faulted, asleep on the ring or held by the black-eye rule). */
  get blockedCount(): number {
    return this.blockedNow;
  }

  isBlocked(v: number): boolean {
    const s = this.state[v];
    return s === VcpuState.FAULTED || s === VcpuState.SLEEPING || s === VcpuState.BLOCKED || s === VcpuState.SPINNING;
  }

  /** Whether a vCPU spins on page g. */
  spinsOn(g: number): boolean {
    if (this.spinning === 0) return false;
    for (let v = 0; v < this.n; v++) if (this.state[v] === VcpuState.SPINNING && this.gfn[v] === g) return true;
    return false;
  }

  /** Page g was loaded (or dropped): the vCPUs spinning on it run again. */
  settled(g: number): void {
    if (this.spinning > 0) this.settledRange(g, g + 1);
  }

  /** settled() for every page of from..to−1. */
  settledRange(from: number, to: number): void {
    if (this.spinning === 0) return;
    for (let v = 0; v < this.n; v++) {
      const g = this.gfn[v]!;
      if (this.state[v] === VcpuState.SPINNING && g >= from && g < to) {
        this.spinning--;
        this.resume(v);
      }
    }
  }

  /** The response to vCPU v's request was consumed. */
  answered(v: number): void {
    if (this.state[v] !== VcpuState.FAULTED) throw new Error(`invariant: vCPU ${v} answered while not faulted`);
    if (this.ring.isBlocked(v)) this.state[v] = VcpuState.BLOCKED;
    else this.resume(v);
  }

  /** The ring woke vCPU v: from the wait queue (it may now put its request) or from black eye. */
  woke(v: number, fromWaitQueue: boolean): void {
    if (fromWaitQueue) this.putRequest(v);
    else if (this.state[v] === VcpuState.BLOCKED) this.resume(v);
  }

  private step(v: number): void {
    if (this.state[v] !== VcpuState.RUNNING) return;
    this.host.placeDue();
    const mem = this.memory, space = mem.space, p = this.patterns[v]!, now = this.kernel.now;
    // A touch deferred from the last slice is examined first, at its own time.
    let g = this.gfn[v]!;
    let w = this.write[v]!;
    let think = this.thinkAfter[v]!;
    // An idle guest only finishes the touch it was driven to (library API): nothing follows.
    const slice = !this.idle ? SLICE_ACCESSES : g < 0 ? 0 : 1;
    // The slice runs in WebAssembly (wasm/touches.ts), on the pages' states and write counts and
    // the first-touch bits in the same memory; a trace's block is replayed here when it runs out.
    let t = now, done = 0, minor = 0, writes = 0;
    for (;;) {
      const status = space.slice(p.block, mem.state.byteOffset, mem.writesAt, this.touched.byteOffset, g, w, think, t, slice - done);
      const times = space.outcomeTimes, counts = space.outcomeCounts;
      t = times[0]!;
      think = times[1]!;
      done += counts[0]!;
      minor += counts[1]!;
      writes += counts[2]!;
      g = counts[3]!;
      w = counts[4]!;
      if (status === Touches.DONE) break;
      p.replayed();
    }
    this.accesses += done;
    this.minorPages += minor;
    this.writes += writes;
    if (g >= 0) {
      // A missing page: it faults now, or is examined again at its own time.
      this.thinkAfter[v] = think;
      if (t === now) return this.fault(v, g, w === 1);
      return this.defer(v, g, w === 1, t);
    }
    if (this.idle) this.gfn[v] = -1;
    // The next slice draws its first touch (the stream is this vCPU's alone: the same draws).
    else this.defer(v, -1, false, t);
  }

  private defer(v: number, g: number, w: boolean, t: number): void {
    this.gfn[v] = g;
    this.write[v] = w ? 1 : 0;
    this.schedule(v, t);
  }

  /** Schedules vCPU v's next slice at t, superseding any slice scheduled before. */
  private schedule(v: number, t: number): void {
    const gen = ++this.generation[v]!;
    this.kernel.at(t, this.stepKind, gen * this.n + v);
  }

  /** The guest's first touch of an outstanding page is counted once: network or minor. */
  private firstTouch(g: number, network: boolean): void {
    const bit = 1 << (g & 31);
    if ((this.touched[g >>> 5]! & bit) !== 0) return;
    this.touched[g >>> 5]! |= bit;
    if (network) this.networkPages++;
    else this.minorPages++;
  }

  private fault(v: number, g: number, w: boolean): void {
    this.faults++;
    this.firstTouch(g, true);
    this.gfn[v] = g;
    this.write[v] = w ? 1 : 0;
    this.since[v] = this.kernel.now;
    this.block();
    const s = this.memory.state[g];
    const spin = this.spins && (s === PageState.PAGING_IN || s === PageState.REQUESTED);
    if (spin) {
      this.state[v] = VcpuState.SPINNING;
      this.spinning++;
      this.spurious++;
    }
    this.host.faulted(v, g);
    if (spin) return;
    if (this.ring.claimGuest(v)) this.putRequest(v);
    else this.state[v] = VcpuState.SLEEPING;
  }

  private putRequest(v: number): void {
    let g = this.gfn[v]!;
    let count = this.prefetch > 0 ? Math.min(this.prefetch, this.memory.pages - g) : 1;
    if (this.perHostPage > 1) {
      // Requests are per host page: the fault asks for the whole huge page it lies in.
      g -= g % this.perHostPage;
      count = Math.min(this.perHostPage, this.memory.pages - g);
    }
    const id = this.ring.putGuest(v, count > 1 ? RequestKind.RANGE : RequestKind.PAGE, g, count);
    // Xen turns a paged-out gfn into paging-in when its request is put.
    this.memory.markPagingInRange(g, g + count);
    this.state[v] = VcpuState.FAULTED;
    this.host.put(id);
    this.host.kick();
  }

  private resume(v: number): void {
    this.unblock(v);
    this.state[v] = VcpuState.RUNNING;
    this.host.resumed(v, this.gfn[v]!, this.since[v]!);
    this.schedule(v, this.kernel.now);
  }

  private block(): void {
    if (++this.blockedNow === this.n) this.allBlockedSince = this.kernel.now;
  }

  private unblock(v: number): void {
    const now = this.kernel.now;
    this.blockedNs[v]! += now - this.since[v]!;
    if (this.blockedNow-- === this.n) this.allBlockedNs += now - this.allBlockedSince;
  }
}
