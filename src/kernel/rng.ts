import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

/** FNV-1a over the stream name, mixed with the run seed: one independent stream per component. */
export function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= Math.floor(seed / 0x100000000);
  return h | 0;
}

/** A seeded random stream owned by one component. */
export class Rng {
  private readonly g: RandomGenerator;

  constructor(seed: number, name: string) {
    this.g = xoroshiro128plus(streamSeed(seed, name));
  }

  /** Uniform in [0, 1). */
  float(): number {
    return uniformFloat64(this.g);
  }

  /**
   * True with probability `p`: one uniform draw, below `p` (the same draw as `float() < p`). A
   * boolean comes back from a call V8 did not inline without a heap number for the double.
   */
  chance(p: number): boolean {
    return uniformFloat64(this.g) < p;
  }

  /** Uniform integer in [from, to], both included. */
  int(from: number, to: number): number {
    return uniformInt(this.g, from, to);
  }

  /** Exponential with the given mean, rounded to whole nanoseconds. */
  exp(mean: number): number {
    return Math.round(-mean * Math.log(1 - this.float()));
  }
}
