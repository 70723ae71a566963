/** QEMU's postcopy-latency-dist: bucket N holds [2^N µs, 2^(N+1) µs); the last takes the rest. */
export const LATENCY_BUCKETS = 24;

/** Every fault latency (ns) in a growable typed array, plus QEMU's log2-µs histogram. */
export class LatencyLog {
  private values = new Float64Array(1024);
  count = 0;
  sum = 0;
  max = 0;
  readonly buckets = new Array<number>(LATENCY_BUCKETS).fill(0);

  add(ns: number): void {
    if (this.count === this.values.length) {
      const v = new Float64Array(this.values.length * 2);
      v.set(this.values);
      this.values = v;
    }
    this.values[this.count++] = ns;
    this.sum += ns;
    if (ns > this.max) this.max = ns;
    const us = ns / 1000;
    const b = us < 2 ? 0 : Math.min(LATENCY_BUCKETS - 1, Math.floor(Math.log2(us)));
    this.buckets[b]!++;
  }

  mean(): number {
    return this.count === 0 ? 0 : Math.round(this.sum / this.count);
  }

  /** Nearest-rank percentiles (p in 0..100) of all recorded latencies. */
  percentiles(ps: number[]): number[] {
    if (this.count === 0) return ps.map(() => 0);
    const sorted = this.values.slice(0, this.count).sort();
    return ps.map((p) => sorted[Math.max(0, Math.ceil((p / 100) * this.count) - 1)]!);
  }
}
