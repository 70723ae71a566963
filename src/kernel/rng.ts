import { argCheck, intArg } from '../io/args.ts';
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
    intArg('Rng.seed', seed, Number.MIN_SAFE_INTEGER);
    argCheck(typeof name === 'string', 'Rng.name', 'must be the stream\'s name (a string)');
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

  /**
   * Exponential with the given mean, rounded to whole nanoseconds. Of mean 0, 0 (its draw still
   * taken, so the stream stays in step): the guests that never think, the soak's costliest seeds,
   * skip a `Math.log` per touch.
   */
  exp(mean: number): number {
    const u = this.float();
    return mean === 0 ? 0 : roundHalfUp(-mean * Math.log(1 - u));
  }
}

/** 2^52: from here on every double is an integer. */
const INTEGERS_FROM = 2 ** 52;

/**
 * Math.round, bit for bit, without its branch: V8 compiles Math.round to a round-up, a compare
 * and a branch that a random fraction mispredicts half the time (a think-time draw 32 → 20 ns on
 * the project's machine), Math.floor to one instruction. For 0.5 ≤ v < 2^52, v + 0.5 is either
 * exact or rounds to a neighbour with the same integer part (both operands' ulps are at most the
 * sum's), so floor(v + 0.5) is Math.round(v); below 0.5 (where 0.5 − 2^-54 would round up to 1,
 * and −0 must stay −0), at 2^52 and above, NaN and negatives take Math.round itself.
 */
export function roundHalfUp(v: number): number {
  return v >= 0.5 && v < INTEGERS_FROM ? Math.floor(v + 0.5) : Math.round(v);
}
