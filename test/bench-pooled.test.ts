import { describe, expect, it } from 'vitest';
import { pooledP50 } from '../bench/pooled.ts';

/** A CDF at every 5 % of a uniform distribution over lo..hi. */
const uniform = (lo: number, hi: number) => Array.from({ length: 21 }, (_, k) => lo + ((hi - lo) * k) / 20);

describe('pooledP50 (live-vs-model bench)', () => {
  it('is the run\'s own median for one run, and the middle of two equal-sized disjoint uniform runs', () => {
    expect(pooledP50([{ cdf: uniform(0, 10), count: 40 }])).toBeCloseTo(5, 9);
    // 0..10 and 20..30, 50 faults each: half of all faults lie below 10.
    expect(pooledP50([{ cdf: uniform(0, 10), count: 50 }, { cdf: uniform(20, 30), count: 50 }])).toBeCloseTo(10, 9);
  });

  it('weighs each run by its faults', () => {
    // 30 faults over 0..10 and 10 over 10..20: the pooled median is at 2/3 of the first run's range.
    expect(pooledP50([{ cdf: uniform(0, 10), count: 30 }, { cdf: uniform(10, 20), count: 10 }])).toBeCloseTo(20 / 3, 9);
  });
});
