import { argCheck, numArg } from '../io/args.ts';
import { FRESH, NO_FLOAT64S, type Alloc } from '../memory/arena.ts';

/** QEMU's postcopy-latency-dist: bucket N holds [2^N µs, 2^(N+1) µs); the last takes the rest. */
export const LATENCY_BUCKETS = 24;

/** Count and percentiles of latencies, ns. */
export interface LatencySummary { count: number; p50: number; p90: number; p99: number }

/** The middle value of `values` (of an even count the upper middle, or the lower with `lower`); `values` is left as it was. */
export const median = (values: readonly number[], lower = false): number =>
  [...values].sort((a, b) => a - b)[(values.length - (lower ? 1 : 0)) >> 1]!;

/** Every fault latency (ns) in a growable typed array, plus QEMU's log2-µs histogram. */
export class LatencyLog {
  private values: Float64Array;
  /** The last percentile query's order (see Ranked), valid while its `n` is count. */
  private ranked: Ranked = { n: 0, keys: new Float64Array(0), ends: null };
  count = 0;
  /** sum and max are doubles from the start: see Kernel.now. */
  sum = NaN;
  max = NaN;
  private min = Infinity;
  readonly buckets = new Array<number>(LATENCY_BUCKETS).fill(0);

  /** `alloc`: where the values' arrays come from (see Arena). */
  constructor(private readonly alloc: Alloc = FRESH) {
    this.sum = this.max = 0;
    // Empty until the first add, which grows it, and doubled from 16: the growth's path then has
    // V8 type feedback from every run's first latencies (V8 gives a function its feedback only
    // after its first few calls), not only from a run long enough to fill a large array.
    this.values = NO_FLOAT64S;
  }

  add(ns: number): void {
    // One compare on the hot path (a fault's latency): the message only for a bad argument.
    if (!(ns >= 0)) numArg('LatencyLog.add.ns', ns, 0, Infinity);
    if (this.count === this.values.length) {
      const v = this.alloc.float64(Math.max(16, this.values.length * 2));
      v.set(this.values);
      this.values = v;
    }
    this.values[this.count++] = ns;
    this.sum += ns;
    // No branches: one taken only in a run's first calls gets no V8 type feedback and deoptimises
    // the next run's code when taken there. The bucket is floor(log2(µs)) of the whole µs.
    this.max = Math.max(this.max, ns);
    this.min = Math.min(this.min, ns);
    const us = Math.min(Math.floor(ns / 1000), 2 ** 30);
    this.buckets[Math.min(LATENCY_BUCKETS - 1, Math.max(0, 31 - Math.clz32(us)))]!++;
  }

  mean(): number {
    return this.count === 0 ? 0 : Math.round(this.sum / this.count);
  }

  /** Count and percentiles, as a report's fault-latency gives them. */
  summary(): LatencySummary {
    const [p50, p90, p99] = this.percentiles([50, 90, 99]);
    return { count: this.count, p50: p50!, p90: p90!, p99: p99! };
  }

  /** Nearest-rank percentiles (p in 0..100) of all recorded latencies. */
  percentiles(ps: number[]): number[] {
    argCheck(Array.isArray(ps) && ps.every((p) => p >= 0 && p <= 100), 'LatencyLog.percentiles.ps', 'must be a list of percentiles, each 0..100');
    const n = this.count;
    if (n === 0) return ps.map(() => 0);
    // Every fault of a ring-bound storm may wait exactly as long: then no sort is needed.
    if (this.min === this.max) return ps.map(() => this.max);
    if (this.ranked.n !== n) this.ranked = distinctRanked(this.values, n) ?? this.sortedRanked(n);
    const { keys, ends } = this.ranked;
    return ps.map((p) => {
      const r = Math.max(0, Math.ceil((p / 100) * n) - 1);
      return keys[ends === null ? r : firstAbove(ends, r)]!;
    });
  }

  /** Every value in order: the native sort beats any selection written here in a process that has not warmed up. */
  private sortedRanked(n: number): Ranked {
    const keys = this.alloc.float64(n);
    keys.set(this.values.subarray(0, n));
    keys.sort();
    return { n, keys, ends: null };
  }
}

/**
 * The values of a log in order, as `keys` (ascending) with `ends[i]` the count of values up to
 * and including `keys[i]`, or each value once when `ends` is null; `n` values in all.
 */
interface Ranked { n: number; keys: Float64Array; ends: Int32Array | null }

/** The first index whose `ends` exceeds rank `r` (`ends` ascending, its last above r). */
function firstAbove(ends: Int32Array, r: number): number {
  let lo = 0, hi = ends.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ends[mid]! > r) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * A latency is a sum of a few fixed costs: a sweep run's 256,708 fault latencies took 174
 * distinct values, whose sort (34 ms on this VM, twice a run with the request latencies) was
 * the costliest call of a 256-run sweep. Counted in a hash table by their bits, they sort as 174
 * keys (6 ms). Past DISTINCT_MAX different values the count gives up: the caller sorts them all.
 */
const DISTINCT_MAX = 4096;
/** Slots of the table: 2^13, at most half full. */
const SLOT_BITS = 13, SLOTS = 1 << SLOT_BITS;
/** Below this many values the sort is already quick. */
const DISTINCT_FROM = 4096;
// The bits as signed words: V8 holds every int32 as a small integer, where an unsigned word past
// 2^31 came as a heap number and deoptimised the code built for the first, smaller ones.
let slotKeys = new Float64Array(0), slotCounts = new Int32Array(0), slotWords = new Int32Array(0);

/** The slot that holds the value of bits hi:lo, or the empty one it goes to (linear probing). */
function slotOf(lo: number, hi: number): number {
  // Stepped once before the first look, so the probe's step has V8 type feedback from the start.
  let h = (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> (32 - SLOT_BITS)) - 1;
  do h = (h + 1) & (SLOTS - 1);
  while (slotCounts[h] !== 0 && (slotWords[2 * h] !== lo || slotWords[2 * h + 1] !== hi));
  return h;
}

function distinctRanked(values: Float64Array, n: number): Ranked | null {
  if (n < DISTINCT_FROM) return null;
  if (slotKeys.length === 0) {
    slotKeys = new Float64Array(SLOTS);
    slotCounts = new Int32Array(SLOTS);
    slotWords = new Int32Array(slotKeys.buffer);
  }
  slotCounts.fill(0);
  const words = new Int32Array(values.buffer, values.byteOffset, 2 * n);
  let distinct = 0;
  for (let i = 0; i < n; i++) {
    const h = slotOf(words[2 * i]!, words[2 * i + 1]!);
    if (slotCounts[h] === 0) {
      if (++distinct > DISTINCT_MAX) return null;
      slotKeys[h] = values[i]!;
    }
    slotCounts[h]!++;
  }
  const keys = new Float64Array(distinct);
  for (let h = 0, j = 0; h < SLOTS; h++) if (slotCounts[h] !== 0) keys[j++] = slotKeys[h]!;
  // The native order of all the values (−0 before 0), each key then counted.
  keys.sort();
  const ends = new Int32Array(distinct), keyWords = new Int32Array(keys.buffer);
  for (let j = 0, total = 0; j < distinct; j++) ends[j] = total += slotCounts[slotOf(keyWords[2 * j]!, keyWords[2 * j + 1]!)]!;
  return { n, keys, ends };
}
