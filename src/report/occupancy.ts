/** Ring occupancy as a share of time: a sample cloud of a ring that fills and drains is unreadable. */
import type { OccupancyBar } from './charts.ts';
import { mean, type Config } from './configs.ts';

/** More occupancies than this (a ring over 64 slots) are grouped into ranges, so bars stay wide. */
const MAX_CATEGORIES = 65;

export interface OccupancyShares {
  bars: OccupancyBar[];
  /** x categories in order: "0", "1", … or ranges "0–63", "64–127", …. */
  categories: string[];
  binned: boolean;
  /** Runs with a timeline per configuration (the mean is over these). */
  runs: number[];
}

/**
 * For each configuration with a timeline, the share of samples at each occupancy, averaged over its
 * runs with a timeline. Samples are evenly spaced in time, so a share of samples estimates a share of time.
 */
export function occupancyShares(configs: readonly Config[]): OccupancyShares {
  const timelines = configs.map((c) => c.results.flatMap((r) => (r.emulator.timeline?.ringOccupancy.length ? [r.emulator.timeline.ringOccupancy] : [])));
  const upper = Math.max(0, ...timelines.flat(2));
  const width = upper + 1 > MAX_CATEGORIES ? Math.ceil((upper + 1) / 32) : 1;
  const n = Math.floor(upper / width) + 1;
  const categories = Array.from({ length: n }, (_, i) => {
    const lo = i * width, hi = Math.min(lo + width - 1, upper);
    return lo === hi ? String(lo) : `${lo}–${hi}`;
  });
  const bars = configs.flatMap((c, ci) => {
    const shares = timelines[ci]!.map((occ) => {
      const counts = new Array<number>(n).fill(0);
      for (const v of occ) counts[Math.floor(v / width)]!++;
      return counts.map((k) => k / occ.length);
    });
    return categories.map((slots, i) => ({ series: c.label, slots, share: mean(shares.map((s) => s[i]!)) }));
  });
  return { bars, categories, binned: width > 1, runs: timelines.map((t) => t.length) };
}
