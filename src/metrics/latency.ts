import { argCheck, numArg } from '../io/args.ts';
import { FRESH, type Alloc } from '../memory/arena.ts';

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
  /** The values sorted by the last percentile query (valid while its length is count). */
  private sorted: Float64Array = new Float64Array(0);
  count = 0;
  /** sum and max are doubles from the start: see Kernel.now. */
  sum = NaN;
  max = NaN;
  private min = Infinity;
  readonly buckets = new Array<number>(LATENCY_BUCKETS).fill(0);

  /** `alloc`: where the values' arrays come from (see Arena). */
  constructor(private readonly alloc: Alloc = FRESH) {
    this.sum = this.max = 0;
    this.values = alloc.float64(1024);
  }

  add(ns: number): void {
    // One compare on the hot path (a fault's latency): the message only for a bad argument.
    if (!(ns >= 0)) numArg('LatencyLog.add.ns', ns, 0, Infinity);
    if (this.count === this.values.length) {
      const v = this.alloc.float64(this.values.length * 2);
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
    // The native sort beats any selection written here in a process that has not warmed up.
    if (this.sorted.length !== n) {
      this.sorted = this.alloc.float64(n);
      this.sorted.set(this.values.subarray(0, n));
      this.sorted.sort();
    }
    return ps.map((p) => this.sorted[Math.max(0, Math.ceil((p / 100) * n) - 1)]!);
  }
}
