import { argCheck, intArg, numArg, objArg, pageSizeArg } from '../io/args.ts';
import { Rng } from '../kernel/rng.ts';
import { popcount32 } from '../memory/skip-list.ts';
import type { DirtyLog } from '../precopy/dirty-log.ts';
import { UNBOUNDED, type WorkBudget } from '../kernel/work.ts';

/** Who spent the work budget (WorkBudget), when a DMA writer did. */
const DMA = 'a device\'s DMA writes';

export type DmaTracking = 'none' | 'unmap' | 'iommu' | 'device-log';
export interface PageRange { start: number; count: number }

/** A device's `dma:` section (device spec): the pages it writes and how its writes are tracked. */
export interface DmaSpec {
  /** The pages the device can reach (its mapped IOVA). */
  region: PageRange[];
  /** Where its writes land (its RX buffers), within the region; unset: the whole region. */
  buffers?: PageRange[] | undefined;
  bytesPerSec: number;
  pattern: 'sequential' | 'random';
  tracking: DmaTracking;
  unmapDelayNs: number;
  iommuScanPerPageNs: number;
  logMaxRanges: number;
  logReportPerPageNs: number;
  logFails: boolean;
}

const ctz = (x: number) => 31 - Math.clz32(x & -x);
/** Bits lo..hi−1 of word w (pages 32w..32w+31). */
function wordMask(w: number, lo: number, hi: number): number {
  const a = Math.max(lo - (w << 5), 0), b = Math.min(hi - (w << 5), 32);
  return (b === 32 ? ~0 : (1 << b) - 1) & (~0 << a);
}

/** Sorted, disjoint, non-adjacent ranges covering the same pages. */
export function normalizeRanges(ranges: readonly PageRange[]): PageRange[] {
  const out: PageRange[] = [];
  for (const r of [...ranges].filter((r) => r.count > 0).sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1];
    if (last && r.start <= last.start + last.count) last.count = Math.max(last.count, r.start + r.count - last.start);
    else out.push({ start: r.start, count: r.count });
  }
  return out;
}

/**
 * DMA_LOGGING_START takes a limited number of IOVA ranges (migration.md §4): the region's ranges
 * merged down to `max` by closing the smallest gaps first (ties: lower address first).
 */
export function trackedRanges(region: readonly PageRange[], max: number): PageRange[] {
  const r = normalizeRanges(region), close = new Uint8Array(r.length);
  const gaps = r.slice(1).map((x, i) => ({ i, size: x.start - r[i]!.start - r[i]!.count }));
  gaps.sort((a, b) => a.size - b.size || a.i - b.i);
  for (let k = 0; k < r.length - Math.max(1, max); k++) close[gaps[k]!.i] = 1;
  const out: PageRange[] = [];
  for (let i = 0; i < r.length; i++) {
    const last = out[out.length - 1];
    if (i > 0 && close[i - 1]) last!.count = r[i]!.start + r[i]!.count - last!.start;
    else out.push({ ...r[i]! });
  }
  return out;
}

/**
 * A device writing guest memory by DMA while it runs, and the dirty tracking that (maybe) tells the
 * migration about it (seed 003, migration.md §4). DMA bypasses the CPU's dirty logging, so a write
 * sets the page's `stale` bit (the ground truth) directly; only what the tracking reports reaches
 * the DirtyLog. DMA marks are kept out of `log.writes` (the vCPUs' writes): `writes` here counts
 * them. Bitmaps are one bit per guest page; loops run over the region's words only.
 */
export class DmaWriter {
  /** The region as sorted disjoint ranges: [lo[i], hi[i]) starts at flat offset off[i]. */
  private readonly lo: Int32Array;
  private readonly hi: Int32Array;
  private readonly off: Float64Array;
  /** Words holding region pages. */
  private readonly words: Int32Array;
  /** Pages its writes land in (the buffers). */
  readonly regionPages: number;
  /** The pages it can reach (mapped IOVA), as sorted disjoint ranges, and how many. */
  private readonly reach: PageRange[];
  readonly reachPages: number;
  /** device-log: pages of the tracked ranges, merged gaps included (each costs a report bit). */
  readonly coveredPages: number;
  /** iommu: the PTE dirty bits; device-log: the device's log (written since the last report). */
  private readonly dirty: Uint32Array;
  /** Written by DMA and not reported by the tracking since. */
  private readonly unseen: Uint32Array;
  /** unmap: time-ordered runs of pending writes; page i of a run was written at t0 + i × stepNs. */
  private pLo = new Int32Array(16);
  private pN = new Int32Array(16);
  private pT = new Float64Array(16);
  private head = 0;
  private len = 0;
  /** ns per page written. */
  private readonly stepNs: number;
  /** Bytes toward the next page (like dirtying.ts's Pace, carried between intervals). */
  private carry = 0;
  /** sequential: flat offset of the next page of the ring. */
  private cursor = 0;
  /** Writes are done up to doneTo, none after stoppedAt; `resolved`: pending writes met their fate. */
  private doneTo = -Infinity;
  private stoppedAt = Infinity;
  private unmapAll = false;
  private resolved = false;
  /** Page writes by DMA (a page written twice counts twice). */
  writes = 0;
  /** Pages put into the log by the tracking, summed over reports. */
  reported = 0;
  /** Extra sync cost (IOMMU scans, DMA_LOGGING_REPORT), summed. */
  costNs = 0;
  /** unmap: pending writes dropped by a stop without unmap (never seen). */
  lost = 0;

  /** `work`: the run's bound on work inside events (Kernel.work): each write drawn, each pending run kept. */
  constructor(readonly spec: DmaSpec, private readonly pageSize: number, pages: number, private readonly rng: Rng, private readonly work: WorkBudget = UNBOUNDED) {
    objArg('DmaWriter.spec', spec, "a device's dma section (parseScenario(input).devices[i].dma)");
    pageSizeArg('DmaWriter.pageSize', pageSize);
    intArg('DmaWriter.pages', pages, 1, 2 ** 30);
    argCheck(rng instanceof Rng, 'DmaWriter.rng', 'must be the Rng its writes are drawn from');
    numArg('DmaWriter.spec.bytesPerSec', spec.bytesPerSec, Number.MIN_VALUE, Infinity);
    argCheck(Array.isArray(spec.region), 'DmaWriter.spec.region', 'must be a list of { start, count } ranges');
    const reach = normalizeRanges(spec.region), r = normalizeRanges(spec.buffers ?? spec.region);
    for (const x of reach) argCheck(x.start >= 0 && x.start + x.count <= pages, 'DmaWriter.spec.region', `${x.start}+${x.count} lies outside the ${pages} pages`);
    for (const x of r) {
      argCheck(reach.some((y) => y.start <= x.start && x.start + x.count <= y.start + y.count), 'DmaWriter.spec.buffers', `${x.start}+${x.count} lies outside the region`);
    }
    this.reach = reach;
    this.reachPages = reach.reduce((s, x) => s + x.count, 0);
    this.lo = Int32Array.from(r, (x) => x.start);
    this.hi = Int32Array.from(r, (x) => x.start + x.count);
    this.off = new Float64Array(r.length);
    let total = 0;
    const words: number[] = [];
    r.forEach((x, i) => {
      this.off[i] = total;
      total += x.count;
      for (let w = x.start >>> 5; w <= (x.start + x.count - 1) >>> 5; w++) if (words[words.length - 1] !== w) words.push(w);
    });
    this.regionPages = total;
    this.words = Int32Array.from(words);
    this.coveredPages = trackedRanges(reach, spec.logMaxRanges).reduce((s, x) => s + x.count, 0);
    this.dirty = new Uint32Array((pages + 31) >>> 5);
    this.unseen = new Uint32Array((pages + 31) >>> 5);
    this.stepNs = (pageSize * 1e9) / spec.bytesPerSec;
  }

  /**
   * DMA writes in [from, to) (none after stop()): each written page becomes stale; the tracking
   * decides what reaches `log` and when. Intervals follow one another; the device is not throttled
   * by auto-converge and keeps writing while the vCPUs are paused, until stop().
   */
  advance(from: number, to: number, log: DirtyLog, stale: Uint32Array): void {
    from = Math.max(from, this.doneTo);
    const end = Math.min(to, this.stoppedAt), P = this.regionPages, unmap = this.spec.tracking === 'unmap';
    if (end > from && P > 0) {
      const carryIn = this.carry, bytes = carryIn + ((end - from) * this.spec.bytesPerSec) / 1e9;
      const n = Math.floor(bytes / this.pageSize);
      this.carry = bytes - n * this.pageSize;
      this.writes += n;
      // unmap: write k (done at tk) shows when the driver unmaps its buffer, at tk + unmapDelayNs;
      // the first k of them are visible by `end`, the rest are pending.
      const shown = carryIn + ((end - this.spec.unmapDelayNs - from) * this.spec.bytesPerSec) / 1e9;
      const k = unmap ? Math.min(n, Math.max(0, Math.floor(shown / this.pageSize))) : n;
      const tk = (i: number) => from + (((i + 1) * this.pageSize - carryIn) * 1e9) / this.spec.bytesPerSec;
      if (this.spec.pattern === 'sequential') {
        // An RX ring: the region's pages in address order, reused cyclically; of the visible part one
        // lap at most matters (the log is a set), the pending part keeps every lap's times.
        const c = this.cursor;
        if (k >= P) this.span(0, P, log, stale, -1);
        else if (c + k <= P) this.span(c, c + k, log, stale, -1);
        else {
          this.span(c, P, log, stale, -1);
          this.span(0, c + k - P, log, stale, -1);
        }
        let room = this.work.left;
        for (let i = k, f = (c + k) % P; i < n;) {
          if (--room < 0) return this.work.spent(DMA);
          const m = Math.min(n - i, P - f);
          this.span(f, f + m, log, stale, tk(i));
          i += m;
          f = (f + m) % P;
        }
        this.work.left = room;
        this.cursor = (c + n) % P;
      } else {
        // Past 20 draws per page every page is hit but for e^−20 of them: write them all.
        if (k >= 20 * P) this.span(0, P, log, stale, -1);
        const first = k >= 20 * P ? k : 0;
        if (!this.work.take(n - first, DMA)) return;
        for (let i = first; i < n; i++) {
          const g = this.rng.int(0, P - 1);
          this.span(g, g + 1, log, stale, i < k ? -1 : tk(i));
        }
      }
    }
    this.doneTo = Math.max(this.doneTo, end);
    if (unmap) this.flush(to, log);
  }

  /** A dirty sync at `now` (after advance(…, now)); `final`: the device is stopped. Returns its extra cost. */
  sync(now: number, log: DirtyLog, final: boolean): number {
    if (final) this.stop(now, false);
    const t = this.spec.tracking;
    // none: nothing tracks the device, so every page it can reach is "perpetually dirty" (§4).
    if (t === 'none') this.reportRegion(log);
    else if (t === 'unmap') this.flush(now, log);
    // iommu: test-and-clear the dirty bit of every mapped page's IOMMU PTE (seed 003; VT-d second-stage bit 9).
    else if (t === 'iommu') this.reportDirty(log);
    // device-log: DMA_LOGGING_REPORT, read-and-clear per tracked range; an error = "all dirty" (§4).
    else if (this.spec.logFails) this.reportRegion(log);
    else this.reportDirty(log);
    const cost = t === 'iommu' ? this.reachPages * this.spec.iommuScanPerPageNs
      : t === 'device-log' ? this.coveredPages * this.spec.logReportPerPageNs : 0;
    this.costNs += cost;
    return cost;
  }

  /**
   * The device stopped DMA at `now` (the first stop counts). `unmapAll`: hot-unplug, whose driver
   * unmaps every buffer, so pending writes show then (seed 003); after a VFIO stop they never do.
   */
  stop(now: number, unmapAll: boolean): void {
    if (this.stoppedAt !== Infinity) return;
    this.stoppedAt = Math.max(now, this.doneTo);
    this.unmapAll = unmapAll;
  }

  /** unmap: page writes waiting for their unmap. */
  get pending(): number {
    let n = 0;
    for (let j = 0, i = this.head; j < this.len; j++, i = (i + 1) % this.pN.length) n += this.pN[i]!;
    return n;
  }

  /** Pages written by DMA that the tracking has not reported since; with `stale`, only stale ones. */
  neverSeen(stale?: Uint32Array): number {
    let n = 0;
    for (const w of this.words) n += popcount32(this.unseen[w]! & (stale ? stale[w]! : ~0));
    return n;
  }

  /**
   * Writes pages [flat a, flat b) of the region: pending from t0 on (unmap; times are ≥ 0), else
   * visible now: in the log at once for unmap, in `dirty` for iommu/device-log.
   */
  private span(a: number, b: number, log: DirtyLog, stale: Uint32Array, t0: number): void {
    const track = this.spec.tracking === 'iommu' || this.spec.tracking === 'device-log';
    for (let i = this.rangeOf(a); a < b; i++) {
      const lo = this.lo[i]! + (a - this.off[i]!), hi = Math.min(this.hi[i]!, lo + (b - a));
      for (let w = lo >>> 5; w <= (hi - 1) >>> 5; w++) {
        const bits = wordMask(w, lo, hi);
        stale[w]! |= bits;
        if (track) this.dirty[w]! |= bits;
        this.unseen[w]! |= bits;
      }
      if (t0 >= 0) {
        this.push(lo, hi - lo, t0);
        t0 += (hi - lo) * this.stepNs;
      } else if (this.spec.tracking === 'unmap') this.report(lo, hi, log);
      a += hi - lo;
    }
  }

  /** The range holding flat offset a (binary search). */
  private rangeOf(a: number): number {
    let i = 0, j = this.off.length - 1;
    while (i < j) {
      const mid = (i + j + 1) >>> 1;
      if (this.off[mid]! <= a) i = mid;
      else j = mid - 1;
    }
    return i;
  }

  private push(lo: number, n: number, t0: number): void {
    if (this.len === this.pN.length) {
      // Full: unroll into arrays twice the size (bounded by rate × delay, times laps of the ring).
      const los = new Int32Array(2 * this.len), ns = new Int32Array(2 * this.len), ts = new Float64Array(2 * this.len);
      for (let j = 0; j < this.len; j++) {
        const i = (this.head + j) % this.len;
        [los[j], ns[j], ts[j]] = [this.pLo[i]!, this.pN[i]!, this.pT[i]!];
      }
      [this.pLo, this.pN, this.pT, this.head] = [los, ns, ts, 0];
    }
    const i = (this.head + this.len++) % this.pN.length;
    this.pLo[i] = lo;
    this.pN[i] = n;
    this.pT[i] = t0;
  }

  /** unmap: pending writes whose unmap happened by `t` reach the log; at the stop, the rest too or never. */
  private flush(t: number, log: DirtyLog): void {
    const limit = Math.min(t, this.stoppedAt) - this.spec.unmapDelayNs;
    while (this.len > 0) {
      const i = this.head, t0 = this.pT[i]!, n = this.pN[i]!;
      if (limit < t0) break;
      const v = Math.min(n, Math.floor((limit - t0) / this.stepNs) + 1);
      this.report(this.pLo[i]!, this.pLo[i]! + v, log);
      if (v < n) {
        this.pLo[i]! += v;
        this.pN[i] = n - v;
        this.pT[i] = t0 + v * this.stepNs;
        break;
      }
      this.head = (this.head + 1) % this.pN.length;
      this.len--;
    }
    // At the stop, once every write before it is done (advance may come after a final sync).
    if (t < this.stoppedAt || this.doneTo < this.stoppedAt || this.resolved) return;
    this.resolved = true;
    for (; this.len > 0; this.len--, this.head = (this.head + 1) % this.pN.length) {
      const lo = this.pLo[this.head]!, hi = lo + this.pN[this.head]!;
      if (this.unmapAll) this.report(lo, hi, log);
      else {
        // Never unmapped: stays stale at the destination (the checker reports it).
        this.lost += hi - lo;
        for (let w = lo >>> 5; w <= (hi - 1) >>> 5; w++) this.unseen[w]! |= wordMask(w, lo, hi);
      }
    }
  }

  /** Marks pages lo..hi−1 in the log as a report (not a vCPU write). */
  private report(lo: number, hi: number, log: DirtyLog): void {
    const writes = log.writes;
    log.markRange(lo, hi);
    log.writes = writes;
    for (let w = lo >>> 5; w <= (hi - 1) >>> 5; w++) this.unseen[w]! &= ~wordMask(w, lo, hi);
    this.reported += hi - lo;
  }

  /**
   * Reports the whole region (and clears what the tracking held). Unwritten pages lose their
   * zero-page bit in the log too: conservative, QEMU re-sends them either way.
   */
  private reportRegion(log: DirtyLog): void {
    for (const x of this.reach) this.report(x.start, x.start + x.count, log);
    for (const w of this.words) this.dirty[w] = 0;
  }

  /** Read-and-clear of `dirty`: each run of set bits goes to the log. */
  private reportDirty(log: DirtyLog): void {
    for (const w of this.words) {
      let bits = this.dirty[w]!;
      this.dirty[w] = 0;
      while (bits !== 0) {
        const lo = ctz(bits), rest = ~(bits | ((1 << lo) - 1)), hi = rest === 0 ? 32 : ctz(rest);
        this.report((w << 5) + lo, (w << 5) + hi, log);
        bits = hi === 32 ? 0 : bits & (~0 << hi);
      }
    }
  }
}
