import { argCheck, intArg } from '../io/args.ts';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';

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

/**
 * A seeded random stream owned by one component: pure-rand's xoroshiro128+ and its uniform
 * distributions, value for value (test/kernel.test.ts holds them against pure-rand's own),
 * stepped on this object's fields. pure-rand's draw is three calls deep (distribution, generator
 * object, step); in the vCPUs' loop V8's inlining budget ran out before the steps, and a guest
 * that never thinks spent most of each touch in those calls (docs/benchmark.md). Here each draw
 * is one call.
 */
export class Rng {
  // The generator's state as pure-rand lays it out (its xoroshiro128plus(seed)).
  private s01: number;
  private s00: number;
  private s11: number;
  private s10: number;

  constructor(seed: number, name: string) {
    intArg('Rng.seed', seed, Number.MIN_SAFE_INTEGER);
    argCheck(typeof name === 'string', 'Rng.name', 'must be the stream\'s name (a string)');
    const s = streamSeed(seed, name);
    this.s01 = -1;
    this.s00 = ~s;
    this.s11 = s | 0;
    this.s10 = 0;
  }

  /** One step of xoroshiro128+: a signed 32-bit output. */
  private next(): number {
    const s00 = this.s00, s01 = this.s01, a0 = this.s10 ^ s00, a1 = this.s11 ^ s01;
    const out = (s00 + this.s10) | 0;
    this.s00 = (s00 << 24) ^ (s01 >>> 8) ^ a0 ^ (a0 << 16);
    this.s01 = (s01 << 24) ^ (s00 >>> 8) ^ a1 ^ ((a1 << 16) | (a0 >>> 16));
    this.s10 = (a1 << 5) ^ (a0 >>> 27);
    this.s11 = (a0 << 5) ^ (a1 >>> 27);
    return out;
  }

  /**
   * The generator's state, as pure-rand lays it out: for pure-rand's own draw of a large range,
   * and for a stream that goes on elsewhere (the guest's touches, drawn in WebAssembly:
   * src/workload/access.ts; nothing then draws from this object).
   */
  words(): [number, number, number, number] {
    return [this.s01, this.s00, this.s11, this.s10];
  }

  /** Uniform in [0, 1): 26 bits of one step above 27 of the next (pure-rand's uniformFloat64). */
  float(): number {
    const high = this.next() & 0x3ffffff;
    return high * 2 ** -26 + (this.next() & 0x7ffffff) * 2 ** -53;
  }

  /**
   * True with probability `p`: one uniform draw, below `p` (the same draw as `float() < p`). A
   * boolean comes back from a call V8 did not inline without a heap number for the double.
   */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /**
   * Uniform integer in [from, to], both included: pure-rand's uniformInt, which rejects the steps
   * past the last whole multiple of the range. Ranges past 2^32 go to pure-rand itself, on this
   * stream's state.
   */
  int(from: number, to: number): number {
    const size = to - from + 1;
    if (size > 2 ** 32) return this.large(from, to);
    const limit = size > 2 ? Math.floor(2 ** 32 / size) * size : 2 ** 32;
    // pure-rand's step + 2^31, as an unsigned 32-bit integer (flipping the top bit adds 2^31),
    // and its remainder taken as one (the outer >>> 0 tells V8 so): an integer division, where
    // a remainder of doubles runs x87's fprem.
    let v = (this.next() ^ 0x80000000) >>> 0;
    while (v >= limit) v = (this.next() ^ 0x80000000) >>> 0;
    return (size === 2 ** 32 ? v : (v % (size >>> 0)) >>> 0) + from;
  }

  private large(from: number, to: number): number {
    const g = xoroshiro128plusFromState(this.words());
    const v = uniformInt(g, from, to);
    [this.s01, this.s00, this.s11, this.s10] = g.getState() as [number, number, number, number];
    return v;
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
