/** QEMU's postcopy-latency-dist: bucket N holds [2^N µs, 2^(N+1) µs); the last takes the rest. */
export const LATENCY_BUCKETS = 24;

/** Every fault latency (ns) in a growable typed array, plus QEMU's log2-µs histogram. */
export class LatencyLog {
  private values = new Float64Array(1024);
  /** The values sorted by the last percentile query (valid while its length is count). */
  private sorted = new Float64Array(0);
  count = 0;
  /** sum, max and lastNs are doubles from the start: see Kernel.now. */
  sum = NaN;
  max = NaN;
  private min = Infinity;
  readonly buckets = new Array<number>(LATENCY_BUCKETS).fill(0);
  /** The last latency added and its bucket: faults in a storm often wait exactly as long. */
  private lastNs = NaN;
  private lastBucket = 0;

  constructor() {
    this.sum = this.max = 0;
    this.lastNs = -1;
  }

  add(ns: number): void {
    if (this.count === this.values.length) {
      const v = new Float64Array(this.values.length * 2);
      v.set(this.values);
      this.values = v;
    }
    this.values[this.count++] = ns;
    this.sum += ns;
    if (ns > this.max) this.max = ns;
    if (ns < this.min) this.min = ns;
    if (ns !== this.lastNs) {
      const us = ns / 1000;
      this.lastBucket = us < 2 ? 0 : Math.min(LATENCY_BUCKETS - 1, Math.floor(Math.log2(us)));
      this.lastNs = ns;
    }
    this.buckets[this.lastBucket]!++;
  }

  mean(): number {
    return this.count === 0 ? 0 : Math.round(this.sum / this.count);
  }

  /** Nearest-rank percentiles (p in 0..100) of all recorded latencies. */
  percentiles(ps: number[]): number[] {
    const n = this.count;
    if (n === 0) return ps.map(() => 0);
    // Every fault of a ring-bound storm may wait exactly as long: then no sort is needed.
    if (this.min === this.max) return ps.map(() => this.max);
    // The native sort beats any selection written here in a process that has not warmed up.
    if (this.sorted.length !== n) this.sorted = this.values.slice(0, n).sort();
    return ps.map((p) => this.sorted[Math.max(0, Math.ceil((p / 100) * n) - 1)]!);
  }
}
