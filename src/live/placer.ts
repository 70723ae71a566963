/**
 * Placing received pages at the live destination, shared by the main thread (the stream) and the
 * preempt thread (requested pages): both add to one set of counters in shared memory.
 */
import type { NextMember } from '../memory/skip-list.ts';
import { MIGRATED_VERSION, holdsContent } from './content.ts';
import { FrameError, FrameType, encodeFrame, type Frame } from './frame.ts';
import { decodePage, decodeZero, encodeRequest } from './payload.ts';
import { PAGE } from './vcpu-worker.ts';
import type { Uffd } from './uffd.ts';

/** Words of the counters both threads add to. */
export const COUNT = {
  /** Pages present (placed once each). */
  PRESENT: 0,
  /** Pages whose bytes, as placed, were not the content the source had to send (the end check). */
  MISMATCHES: 1,
  /** Pages received in PAGE frames, duplicates included. */
  RECEIVED: 2,
  /** Pages received that were already present (not placed again). */
  DUPLICATES: 3,
  /** REQUEST frames sent. */
  REQUESTS: 4,
} as const;

export const createCounters = (): Int32Array => new Int32Array(new SharedArrayBuffer(8 * 4));

/** Words of the UFFDIO_COPY timings both threads add to (ns and counts, 64-bit). */
export const COPY = { SINGLE_CALLS: 0, SINGLE_NS: 1, RUN_CALLS: 2, RUN_PAGES: 3, RUN_NS: 4 } as const;

export const createCopyTimes = (): BigInt64Array => new BigInt64Array(new SharedArrayBuffer(8 * 8));

/** The UFFDIO_COPY timings as the result reports them. */
export function copyStats(t: BigInt64Array): { singleCalls: number; singleNs: number; runCalls: number; runPages: number; runNs: number } {
  return {
    singleCalls: Number(t[COPY.SINGLE_CALLS]), singleNs: Number(t[COPY.SINGLE_NS]),
    runCalls: Number(t[COPY.RUN_CALLS]), runPages: Number(t[COPY.RUN_PAGES]), runNs: Number(t[COPY.RUN_NS]),
  };
}

/** Calls `run` for each run of consecutive pages still REQUESTED (first gfn, length), in order. */
export function requestedRuns(state: Int32Array, run: (gfn: number, n: number) => void): void {
  for (let g = 0; g < state.length;) {
    if (Atomics.load(state, g) !== PAGE.REQUESTED) {
      g++;
      continue;
    }
    let n = 1;
    while (g + n < state.length && Atomics.load(state, g + n) === PAGE.REQUESTED) n++;
    run(g, n);
    g += n;
  }
}

/**
 * The run failed: every page not present reads ABORTED, so a vCPU between its check and its wait
 * sees a changed word and wakes; a vCPU blocked in the kernel gets a zero page.
 */
export function abortMissing(p: Placement): void {
  for (let g = 0; g < p.state.length; g++) {
    if (Atomics.load(p.state, g) === PAGE.PRESENT) continue;
    Atomics.store(p.state, g, PAGE.ABORTED);
    Atomics.notify(p.state, g);
    p.uffd?.zero(p.region, g * p.pageSize, p.pageSize);
  }
}

/** Pages whose state reads present: the record, where COUNT.PRESENT is a running tally. */
export function countPresent(state: Int32Array): number {
  let present = 0;
  for (let g = 0; g < state.length; g++) if (Atomics.load(state, g) === PAGE.PRESENT) present++;
  return present;
}

/** What every thread that asks for pages shares: the counters and when each page was last asked for. */
export interface Requests {
  counters: Int32Array;
  /** Per page, when its last REQUEST was built to be written (process.hrtime ns), 0 if never. */
  requestedAt: Float64Array;
}

/** Where pages go: the guest's memory (a userfaultfd region or a SharedArrayBuffer) and its page states. */
export interface Placement extends Requests {
  seed: number;
  pages: number;
  pageSize: number;
  state: Int32Array;
  /** userfaultfd: the addon and the region's handle; else `memory`. */
  uffd: Uffd | null;
  region: number;
  memory: Uint8Array | null;
  /** userfaultfd: each UFFDIO_COPY's time, one page or a run (COPY.*). */
  copyTimes: BigInt64Array;
  /** Per page, when its placement began (process.hrtime ns): where a vCPU's fault latency ends. */
  placedAt: Float64Array;
}

/** A frame's run first..first+n−1: inside the guest, then counted as received. */
function receive(p: Placement, f: Frame, first: number, n: number): void {
  if (first + n > p.pages) throw new FrameError(`${FrameType[f.type]} for gfns ${first}..${first + n - 1}, outside the guest's ${p.pages} pages`, f);
  Atomics.add(p.counters, COUNT.RECEIVED, n);
}

/**
 * Marks the page present: true for the one thread whose exchange found it not present yet (it
 * placed it), false for any other (a duplicate), as two threads may place it at once. Software
 * waiters are woken; only a REQUESTED page has any (a vCPU marks it so before it waits).
 */
function markPresent(p: Placement, gfn: number, now: number): boolean {
  // Before the state changes: a vCPU that sees the page present reads its time.
  p.placedAt[gfn] = now;
  const was = Atomics.exchange(p.state, gfn, PAGE.PRESENT);
  if (was === PAGE.REQUESTED && !p.uffd) Atomics.notify(p.state, gfn);
  return was !== PAGE.PRESENT;
}

/** A run of n pages received, `placed` of them placed here and the rest duplicates: counted once a run. */
function counted(p: Placement, n: number, placed: number): void {
  if (placed > 0) Atomics.add(p.counters, COUNT.PRESENT, placed);
  if (placed < n) Atomics.add(p.counters, COUNT.DUPLICATES, n - placed);
}

/**
 * Places a PAGE frame's run of pages: each, unless present, placed and its waiters woken (its
 * bytes are checked where they land, at the end: verifyPlaced). userfaultfd places the run with
 * one UFFDIO_COPY (range population), waking the vCPUs blocked on it in the kernel; pages already
 * present are skipped by the kernel.
 */
export function placePages(p: Placement, f: Frame): void {
  const { gfn: first, bytes } = decodePage(f.payload, p.pageSize, f);
  const size = p.pageSize, n = bytes.length / size;
  receive(p, f, first, n);
  let placed = 0;
  const now = Number(process.hrtime.bigint());
  for (let k = 0; k < n; k++) {
    const gfn = first + k;
    // userfaultfd: marked present before the copy maps it, so a vCPU never finds a mapped page
    // not present (it would count a fault that never blocked); one touching in between waits in
    // the kernel for the copy. Software: the bytes first, then present, then the waiters.
    if (Atomics.load(p.state, gfn) === PAGE.PRESENT) continue;
    if (!p.uffd) p.memory!.set(bytes.subarray(k * size, (k + 1) * size), gfn * size);
    if (markPresent(p, gfn, now)) placed++;
  }
  counted(p, n, placed);
  if (p.uffd) {
    const t0 = process.hrtime.bigint();
    p.uffd.copy(p.region, first * p.pageSize, bytes);
    const ns = process.hrtime.bigint() - t0, t = p.copyTimes;
    if (n === 1) {
      Atomics.add(t, COPY.SINGLE_CALLS, 1n);
      Atomics.add(t, COPY.SINGLE_NS, ns);
    } else {
      Atomics.add(t, COPY.RUN_CALLS, 1n);
      Atomics.add(t, COPY.RUN_PAGES, BigInt(n));
      Atomics.add(t, COPY.RUN_NS, ns);
    }
  }
}

/**
 * Places a ZERO frame's run of zero pages: userfaultfd maps them with one UFFDIO_ZEROPAGE (marked
 * present first, as for a copy); the software pager's memory is zeros until a page is placed, so
 * marking them present is placing them.
 */
export function placeZero(p: Placement, f: Frame): void {
  const { gfn: first, count: n } = decodeZero(f.payload, f);
  receive(p, f, first, n);
  let placed = 0;
  const now = Number(process.hrtime.bigint());
  for (let gfn = first; gfn < first + n; gfn++) if (Atomics.load(p.state, gfn) !== PAGE.PRESENT && markPresent(p, gfn, now)) placed++;
  counted(p, n, placed);
  if (p.uffd) p.uffd.zero(p.region, first * p.pageSize, n * p.pageSize);
}

/** A REQUEST frame for `count` pages from `gfn`, counted and stamped (the caller writes it at once). */
export function requestFrame(r: Requests, gfn: number, count = 1): Buffer {
  Atomics.add(r.counters, COUNT.REQUESTS, 1);
  r.requestedAt[gfn] = Number(process.hrtime.bigint());
  return encodeFrame(FrameType.REQUEST, encodeRequest(gfn, count));
}

/**
 * Up to `max` [gfn, asked ns, placed ns] triples, flat, of pages asked for, lowest gfn first:
 * with the source's times of serving them, how long a REQUEST takes to reach the source's send
 * path and its page to come back (one host's clock: the caller knows whether both ends share it).
 */
export function requestStamps(p: Pick<Placement, 'requestedAt' | 'placedAt'>, max: number): number[] {
  const out: number[] = [];
  for (let g = 0; g < p.requestedAt.length && out.length < 3 * max; g++) if (p.requestedAt[g]! > 0) out.push(g, p.requestedAt[g]!, p.placedAt[g]!);
  return out;
}

/**
 * The end check (docs/live.md): every present page of the memory as placed (the userfaultfd
 * region through this thread's view, safe once a page is present; the software pager's buffer)
 * against what the source had to send: content.ts's bytes, or zeros for the scenario's zero pages.
 * Stricter than checking received bytes: a page placed at the wrong gfn, or not at all, is caught.
 * Adds the pages that differ to COUNT.MISMATCHES and returns them.
 */
export function verifyPlaced(p: Placement, zero: NextMember | null): number {
  const size = p.pageSize, zeros = Buffer.alloc(size);
  const memory = p.uffd ? new Uint8Array(p.uffd.view(p.region)) : p.memory!;
  let bad = 0;
  for (let g = 0; g < p.pages; g++) {
    if (Atomics.load(p.state, g) !== PAGE.PRESENT) continue;
    const page = memory.subarray(g * size, (g + 1) * size);
    if (!(zero?.has(g) ? zeros.equals(page) : holdsContent(p.seed, g, MIGRATED_VERSION, page))) bad++;
  }
  Atomics.add(p.counters, COUNT.MISMATCHES, bad);
  return bad;
}
