import { CDF_QUANTILES } from '../src/metrics/report.ts';

/**
 * The p50 of all the faults of several runs together, from each run's fault-latency CDF (its
 * value at every 5 %, linear between) and count: with ~50 faults a run, one run's p50 moves by
 * tens of percent, and their pooled median is the steadier estimate of the live fault p50.
 */
export function pooledP50(runs: readonly { cdf: readonly number[]; count: number }[]): number {
  const step = 1 / (CDF_QUANTILES.length - 1);
  const below = (cdf: readonly number[], x: number): number => {
    if (x < cdf[0]!) return 0;
    for (let k = 0; k + 1 < cdf.length; k++) {
      if (x < cdf[k + 1]!) return (k + (x - cdf[k]!) / (cdf[k + 1]! - cdf[k]!)) * step;
    }
    return 1;
  };
  const all = runs.reduce((n, r) => n + r.count, 0);
  let lo = Math.min(...runs.map((r) => r.cdf[0]!)), hi = Math.max(...runs.map((r) => r.cdf[r.cdf.length - 1]!));
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (runs.reduce((f, r) => f + r.count * below(r.cdf, mid), 0) < all / 2) lo = mid;
    else hi = mid;
  }
  return hi;
}
