// The guest's touches, drawn in WebAssembly (AssemblyScript; scripts/build-wasm.mjs compiles it
// to dist/wasm/draws.wasm, src/workload/draws.ts loads it). A touch is its page, whether it
// writes, and the think time after it, drawn in that order from the vCPU's stream: the draws of
// src/kernel/rng.ts (pure-rand's xoroshiro128+, uniformInt, uniformFloat64), value for value, and
// of src/workload/access.ts's patterns. xoroshiro128+ is 64-bit: JavaScript steps it as four
// 32-bit words, WebAssembly in two i64 (docs/architecture.md, "WebAssembly").

/** Math.round, for the rare think time roundHalfUp leaves to it (src/kernel/rng.ts). */
@external("env", "round") declare function jsRound(x: f64): f64;
/** Math.log itself: the draws stay bit for bit those of JavaScript. */
@external("env", "log") declare function jsLog(x: f64): f64;

/** Touches per fill: AccessPattern's batch. */
const BATCH = 64;

// The one area JavaScript reads and writes (src/workload/draws.ts holds views of it): the think
// times (f64, first for their alignment), the pages (i32), the stream's state (i32: pure-rand's
// four words, the sequential cursor, the shuffled order's LCG value) and the writes (u8).
const AREA = memory.data(BATCH * 8 + BATCH * 4 + 6 * 4 + BATCH, 8);
const THINK = AREA;
const GFN = THINK + BATCH * 8;
const STATE = GFN + BATCH * 4;
const WRITE = STATE + 6 * 4;

/** Where the area begins in memory. */
export function area(): usize {
  return AREA;
}

// The stream's state while a fill runs.
let s0: i64 = 0;
let s1: i64 = 0;

/** One step of xoroshiro128+ (24, 16, 37): the low 32 bits of s0 + s1. */
@inline function next(): i32 {
  const a = s0, x = s1 ^ a;
  const out = <i32>(a + s1);
  s0 = rotl<i64>(a, 24) ^ x ^ (x << 16);
  s1 = rotl<i64>(x, 37);
  return out;
}

/** Uniform in [0, 1): 26 bits of one step above 27 of the next. */
@inline function float(): f64 {
  const high = next() & 0x3ffffff;
  return <f64>high * 1.4901161193847656e-8 + <f64>(next() & 0x7ffffff) * 1.1102230246251565e-16;
}

/** The steps below this are uniform over [0, size): the last whole multiple of size, or 2^32. */
@inline function limitOf(size: u32): u64 {
  return size > 2 ? (<u64>0x100000000 / <u64>size) * <u64>size : 0x100000000;
}

/** Uniform in [0, size), size ≤ 2^31: a step at or past `limit` (limitOf(size)) is drawn again. */
@inline function below(size: u32, limit: u64): u32 {
  let v = <u32>(next() ^ 0x80000000);
  while (<u64>v >= limit) v = <u32>(next() ^ 0x80000000);
  return v % size;
}

/** Math.round for v ≥ 0.5 below 2^52, where floor(v + 0.5) is exact; Math.round itself elsewhere. */
@inline function roundHalfUp(v: f64): f64 {
  return v >= 0.5 && v < 4503599627370496.0 ? Math.floor(v + 0.5) : jsRound(v);
}

/** Pattern kinds (src/workload/access.ts's DrawnKind). */
const SEQUENTIAL = 0;
const RANDOM = 1;
const SHUFFLED = 2;
const HOT_SET = 3;

/**
 * Draws BATCH touches of a pattern over the pages lo..lo+count−1 from the state in the area,
 * into the area, and leaves the state there. `mask`: the shuffled order's LCG mask; `constant`:
 * think times of exactly `meanNs`, else exponential with that mean.
 */
export function fill(kind: i32, lo: i32, count: u32, hotPages: u32, mask: i32, hotProbability: f64,
  writeFraction: f64, meanNs: f64, constant: bool): void {
  s0 = (<i64>load<i32>(STATE) << 32) | <i64>load<u32>(STATE, 4);
  s1 = (<i64>load<i32>(STATE, 8) << 32) | <i64>load<u32>(STATE, 12);
  let cursor = load<i32>(STATE, 16);
  let lcg = load<i32>(STATE, 20);
  // Divisions once a fill, not once a touch.
  const countLimit = limitOf(count), hotLimit = limitOf(hotPages);
  for (let i = 0; i < BATCH; i++) {
    let g: i32;
    if (kind == SEQUENTIAL) {
      g = cursor;
      cursor = <u32>(cursor + 1) == count ? 0 : cursor + 1;
    } else if (kind == SHUFFLED) {
      // The full-period LCG of src/workload/lcg.ts, skipping values past the pages.
      do lcg = (lcg * 1103515245 + 12345) & mask;
      while (<u32>lcg >= count);
      g = lcg;
    } else {
      const hot = kind == HOT_SET && float() < hotProbability;
      g = <i32>below(hot ? hotPages : count, hot ? hotLimit : countLimit);
    }
    store<i32>(GFN + (<usize>i << 2), lo + g);
    store<u8>(WRITE + <usize>i, writeFraction >= 1 || (writeFraction > 0 && float() < writeFraction) ? 1 : 0);
    // An exponential think time's uniform draw (taken even of mean 0, so the stream stays in
    // step); its logarithm is taken below, outside the loop that steps the stream.
    store<f64>(THINK + (<usize>i << 3), constant ? meanNs : float());
  }
  if (!constant) {
    for (let i = 0; i < BATCH; i++) {
      const at = THINK + (<usize>i << 3);
      store<f64>(at, meanNs == 0 ? 0 : roundHalfUp(-meanNs * jsLog(1 - load<f64>(at))));
    }
  }
  store<i32>(STATE, <i32>(s0 >> 32));
  store<i32>(STATE, <i32>s0, 4);
  store<i32>(STATE, <i32>(s1 >> 32), 8);
  store<i32>(STATE, <i32>s1, 12);
  store<i32>(STATE, cursor, 16);
  store<i32>(STATE, lcg, 20);
}
