/**
 * One live vCPU (docs/live.md), a worker thread of the destination: touches guest pages in the
 * workload's pattern. A touch of a page that is not present is a fault. Software pager: the first
 * vCPU to see the page missing marks it requested and puts its gfn on the fault ring, then every
 * faulting vCPU blocks (Atomics.wait on the page's state word) until the pager has placed it.
 * userfaultfd: the touch itself blocks in the kernel, and the fault thread (fault-thread.ts) asks
 * for the page. Each fault's latency is real time, in ns. The result is posted once, when
 * the vCPU has done its touches.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { Rng } from '../kernel/rng.ts';
import { doubled } from '../memory/arena.ts';
import { ringPut } from './ring.ts';
import { loadAddon, loadUffd, type Uffd } from './uffd.ts';

/** Page states, one Int32 a page. */
export const PAGE = { MISSING: 0, REQUESTED: 1, PRESENT: 2, ABORTED: 3 } as const;

export interface VcpuInit {
  vcpu: number;
  vcpus: number;
  /** Guest memory, pages × pageSize bytes: a SharedArrayBuffer, or the handle of a userfaultfd region. */
  memory: SharedArrayBuffer | { uffd: number };
  /** Int32 per page: PAGE.*. */
  state: SharedArrayBuffer;
  /** The fault ring (ring.ts). */
  ring: SharedArrayBuffer;
  /** Float64 per page: when its placement began (process.hrtime ns; placer.ts), 0 until then. */
  placedAt: SharedArrayBuffer;
  /** One Int32: 0 while parked before the switchover, then GO (the guest runs). */
  go: SharedArrayBuffer;
  pageSize: number;
  pattern: 'sequential' | 'random';
  regionStart: number;
  regionCount: number;
  touches: number;
  writeFraction: number;
  /** Mean time between touches, ns (`workload.thinkNs`): the guest's work between memory accesses. */
  thinkNs: number;
  /** Each think time exactly thinkNs (`workload.think: constant`), not an exponential draw. */
  constantThink: boolean;
  seed: number;
}

export interface VcpuResult {
  kind: 'done';
  vcpu: number;
  faults: number;
  /**
   * The first `faults` entries are each fault's latency, ns: from the touch to the page's
   * placement, where QEMU's blocktime ends (`mark_postcopy_blocktime_end`, after the UFFDIO_COPY
   * that places it), not counting how long the woken vCPU then waits for a core.
   */
  latencyNs: Float64Array;
  /** Each fault's round trip, ns: from the touch to the vCPU running again. */
  roundTripNs: Float64Array;
  touches: number;
  writes: number;
  /** Wall time of the touch loop, ms. */
  ms: number;
  /** The run was aborted while this vCPU waited. */
  aborted: boolean;
  /** Xor of the bytes read: keeps the reads observable. */
  readXor: number;
}

/**
 * What a vCPU thread posts: `parked` once it waits for the switchover, `started` as its touch loop
 * begins, then its result. The fault thread posts `parked` (vcpu −1) as it starts reading faults.
 */
export type VcpuMessage = { kind: 'parked'; vcpu: number } | { kind: 'started'; vcpu: number } | VcpuResult;

/** The `go` word's value once the guest runs at the destination (parked threads wake). */
export const GO = 1;

/** The addon in this thread (a worker loads its own copy of the module). */
export function addon(): Uffd {
  const u = loadUffd();
  if ('reason' in u) throw new Error(`the userfaultfd addon is not available in this thread: ${u.reason}`);
  return u.uffd;
}

/**
 * Waits for the switchover: a QEMU destination's vCPU threads exist before the guest runs there,
 * so the thread's start-up (~0.25 s for a Node worker) is not the guest's downtime.
 */
function park(go: Int32Array, parked: () => void): void {
  giveWay();
  parked();
  while (Atomics.load(go, 0) !== GO) Atomics.wait(go, 0, 0);
}

/**
 * A real host runs the guest's vCPUs on cores of their own; here they share the cores with both
 * ends' migration threads, and a vCPU woken by a placement would take the core of the thread
 * that placed it. At SCHED_IDLE (nice 19 without the addon) a vCPU runs only where a core is free.
 */
function giveWay(): void {
  const u = loadAddon();
  if ('uffd' in u && u.uffd.idleThread() === null) return;
  try {
    setPriority(19);
  } catch {
    // Not allowed here: the vCPU runs at normal priority.
  }
}

/** Spins for `ns`: guest code running between two memory accesses. */
function think(ns: number): void {
  // performance.now(): a double, where hrtime.bigint() would allocate at every turn of the spin.
  const until = performance.now() + ns / 1e6;
  while (performance.now() < until);
}

/** Runs one vCPU's touches to the end (blocking: call it on a worker thread). */
export function runVcpu(o: VcpuInit, started: () => void = () => {}, parked: () => void = () => {}): VcpuResult {
  const uffd = o.memory instanceof SharedArrayBuffer ? null : o.memory.uffd;
  const memory = new Uint8Array(uffd === null ? (o.memory as SharedArrayBuffer) : addon().view(uffd));
  const state = new Int32Array(o.state);
  const ring = new Int32Array(o.ring);
  const placedAt = new Float64Array(o.placedAt);
  const rng = new Rng(o.seed, `live-vcpu-${o.vcpu}`);
  const offset = Math.floor((o.vcpu * o.regionCount) / o.vcpus);
  let latency = new Float64Array(Math.min(1024, Math.max(1, o.touches))), roundTrip = new Float64Array(latency.length);
  let faults = 0, writes = 0, readXor = 0, touches = 0, aborted = false;
  park(new Int32Array(o.go), parked);
  const t0 = performance.now();
  started();

  for (let i = 0; i < o.touches; i++) {
    const g = o.regionStart + (o.pattern === 'sequential' ? (offset + i) % o.regionCount : rng.int(0, o.regionCount - 1));
    const write = rng.chance(o.writeFraction);
    // The think time before the touch, as the model's vCPU has it (thinkNs, or an exponential
    // draw with that mean, at least 1 ns): the vCPU runs, busy, for that long.
    if (o.thinkNs > 0) think(o.constantThink ? o.thinkNs : Math.max(1, rng.exp(o.thinkNs)));
    let s = Atomics.load(state, g);
    if (s !== PAGE.PRESENT) {
      const start = process.hrtime.bigint();
      if (uffd !== null) {
        // The touch blocks in the kernel until UFFDIO_COPY (or, on abort, a zero page) fills it.
        readXor ^= memory[g * o.pageSize]!;
        s = Atomics.load(state, g);
      } else {
        if (s === PAGE.MISSING && Atomics.compareExchange(state, g, PAGE.MISSING, PAGE.REQUESTED) === PAGE.MISSING) {
          if (!ringPut(ring, g)) {
            aborted = true;
            break;
          }
        }
        while ((s = Atomics.load(state, g)) !== PAGE.PRESENT && s !== PAGE.ABORTED) Atomics.wait(state, g, s);
      }
      if (s === PAGE.ABORTED) {
        aborted = true;
        break;
      }
      if (faults === latency.length) {
        latency = doubled(latency);
        roundTrip = doubled(roundTrip);
      }
      const trip = Number(process.hrtime.bigint() - start), placed = placedAt[g]!, startNs = Number(start);
      roundTrip[faults] = trip;
      // Never placed (an aborted run's zero page), or placed between the state's read and the
      // clock's (a busy host widens that gap): the round trip, all the vCPU waited.
      latency[faults] = placed > startNs ? placed - startNs : trip;
      faults++;
    }
    // One byte of the page, at an offset that walks through it. A write stores back the byte it
    // finds: a real store, and the page keeps the source's content for the end check.
    const at = g * o.pageSize + ((i * 64) % o.pageSize);
    const byte = memory[at]!;
    if (write) {
      memory[at] = byte;
      writes++;
    } else {
      readXor ^= byte;
    }
    touches++;
  }
  return { kind: 'done', vcpu: o.vcpu, faults, latencyNs: latency.slice(0, faults), roundTripNs: roundTrip.slice(0, faults), touches, writes, ms: performance.now() - t0, aborted, readXor };
}

const data = workerData as { vcpu?: VcpuInit } | null;
const init = data?.vcpu;
if (parentPort && init) {
  const port = parentPort;
  const r = runVcpu(init, () => port.postMessage({ kind: 'started', vcpu: init.vcpu } satisfies VcpuMessage),
    () => port.postMessage({ kind: 'parked', vcpu: init.vcpu } satisfies VcpuMessage));
  port.postMessage(r, [r.latencyNs.buffer as ArrayBuffer, r.roundTripNs.buffer as ArrayBuffer]);
}
