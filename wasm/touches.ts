// The guest's touches in WebAssembly (AssemblyScript; scripts/build-wasm.mjs compiles it to
// dist/wasm/touches.wasm, src/memory/space.ts instantiates it on a run's memory). A touch is its
// page, whether it writes, and the think time after it, drawn in that order from the vCPU's
// stream: the draws of src/kernel/rng.ts (pure-rand's xoroshiro128+, uniformInt,
// uniformFloat64), value for value, and of src/workload/access.ts's patterns. xoroshiro128+ is
// 64-bit: JavaScript steps it as four 32-bit words, WebAssembly as two i64. A vCPU's slice
// (src/workload/vcpu.ts) runs here too, over the page states in the same memory
// (docs/architecture.md, "WebAssembly").

/** Math.round, for the rare think time roundHalfUp leaves to it (src/kernel/rng.ts). */
@external("env", "round") declare function jsRound(x: f64): f64;
/** Math.log itself: the draws stay bit for bit those of JavaScript. */
@external("env", "log") declare function jsLog(x: f64): f64;

/** Touches per block. */
const BATCH = 64;

// A pattern's block (src/workload/access.ts lays it out the same): its drawn touches, its
// stream's state, the touch it is at and its parameters.
const THINK = 0; // f64 × BATCH
const GFN = THINK + 8 * BATCH; // i32 × BATCH
const STATE = GFN + 4 * BATCH; // i32: pure-rand's four words, the sequential cursor, the LCG value
const AT = STATE + 24; // i32: the current touch's index
const KIND = AT + 4; // i32
const LO = KIND + 4; // i32
const COUNT = LO + 4; // u32
const HOT_PAGES = COUNT + 4; // u32
const MASK = HOT_PAGES + 4; // i32: the shuffled order's LCG mask
const CONSTANT = MASK + 4; // i32: 1 if think times are exactly MEAN
const HOT_PROBABILITY = CONSTANT + 8; // f64
const WRITE_FRACTION = HOT_PROBABILITY + 8; // f64
const MEAN = WRITE_FRACTION + 8; // f64: the mean think time (ns)
const WRITE = MEAN + 8; // u8 × BATCH

/** Pattern kinds (src/workload/access.ts's DrawnKind). */
const SEQUENTIAL = 0;
const RANDOM = 1;
const SHUFFLED = 2;
const HOT_SET = 3;
/** A trace's records, which JavaScript replays into the block. */
const TRACE = 4;

/** Where JavaScript may place its arrays: past this module's own data. */
export function heapBase(): usize {
  return __heap_base;
}

/**
 * Sets `n` bytes from `at` to `value`: a memset (memory.fill), where a typed array's fill() on a
 * shared buffer stores byte by byte, 3.6 times slower (docs/benchmark.md).
 */
export function fillBytes(at: usize, value: u8, n: usize): void {
  memory.fill(at, value, n);
}

// The stream's state while a block fills.
let s0: i64 = 0;
let s1: i64 = 0;

/** Takes up the stream whose state (pure-rand's four words, as Rng.words()) is at `at`. */
@inline function loadStream(at: usize): void {
  s0 = (<i64>load<i32>(at) << 32) | <i64>load<u32>(at + 4);
  s1 = (<i64>load<i32>(at + 8) << 32) | <i64>load<u32>(at + 12);
}

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

/** Draws the next BATCH touches of the pattern whose block is at `b` (not a trace's). */
export function fill(b: usize): void {
  const kind = load<i32>(b + KIND), lo = load<i32>(b + LO), count = load<u32>(b + COUNT), hotPages = load<u32>(b + HOT_PAGES);
  const mask = load<i32>(b + MASK), hotProbability = load<f64>(b + HOT_PROBABILITY);
  const writeFraction = load<f64>(b + WRITE_FRACTION), meanNs = load<f64>(b + MEAN), constant = load<i32>(b + CONSTANT) != 0;
  loadStream(b + STATE);
  let cursor = load<i32>(b + STATE + 16);
  let lcg = load<i32>(b + STATE + 20);
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
    store<i32>(b + GFN + (<usize>i << 2), lo + g);
    store<u8>(b + WRITE + <usize>i, writeFraction >= 1 || (writeFraction > 0 && float() < writeFraction) ? 1 : 0);
    // An exponential think time's uniform draw (taken even of mean 0, so the stream stays in
    // step); its logarithm is taken below, outside the loop that steps the stream.
    store<f64>(b + THINK + (<usize>i << 3), constant ? meanNs : float());
  }
  if (!constant) {
    for (let i = 0; i < BATCH; i++) {
      const at = b + THINK + (<usize>i << 3);
      store<f64>(at, meanNs == 0 ? 0 : roundHalfUp(-meanNs * jsLog(1 - load<f64>(at))));
    }
  }
  store<i32>(b + STATE, <i32>(s0 >> 32));
  store<i32>(b + STATE + 4, <i32>s0);
  store<i32>(b + STATE + 8, <i32>(s1 >> 32));
  store<i32>(b + STATE + 12, <i32>s1);
  store<i32>(b + STATE + 16, cursor);
  store<i32>(b + STATE + 20, lcg);
}

/**
 * The zero pages of a guest (src/memory/guest-memory.ts's drawZeroSet): one float() a page, in
 * page order, from the stream whose state is at `state` (a pattern's STATE layout); page g's bit
 * in the bitmap at `out` (32 pages a word) is set when its draw is below `fraction`.
 */
export function drawFraction(state: usize, out: usize, pages: i32, fraction: f64): void {
  loadStream(state);
  let word = 0;
  for (let g = 0; g < pages; g++) {
    if (float() < fraction) word |= 1 << (g & 31);
    if ((g & 31) == 31) {
      store<i32>(out + (<usize>(g >>> 5) << 2), word);
      word = 0;
    }
  }
  if (pages & 31) store<i32>(out + (<usize>(pages >>> 5) << 2), word);
}

// The outcome of a slice or an advance, read by JavaScript (src/memory/space.ts): two f64, then
// i32 counts. A slice's: the time after its touches and the think time of the touch it stopped
// at; the touches done, those that were a page's first touch, those that wrote, and the touch it
// stopped at (page −1 when none) with its write. An advance's: the vCPU's clock and the work
// budget left; the pages it wrote to `out`.
const OUTCOME = memory.data(40, 8);
const O_T = 0; // f64
const O_SECOND = 8; // f64
const O_COUNTS = 16; // i32 × 5

/** Where the outcome of a slice or an advance is. */
export function outcome(): usize {
  return OUTCOME;
}

/** A slice ran its touches (or `limit` of them). */
const DONE = 0;
/** A trace's block ran out: JavaScript replays the next records into it and calls again. */
const REPLAY = 1;

/** PageState.READY (src/memory/guest-memory.ts). */
const READY: u8 = 0;

/**
 * Runs up to `limit` touches of the pattern at `b` from time `t`, while the pages are present
 * (`state`: a byte per page; `writes`: a byte per page, saturating at 255; `touched`: a bit per
 * page): touch (g, w, think) first when g ≥ 0. Stops before the first touch of a missing page.
 */
export function slice(b: usize, state: usize, writes: usize, touched: usize, g: i32, w: i32, think: f64, t: f64, limit: i32): i32 {
  let done = 0, minor = 0, written = 0, status = DONE;
  while (done < limit) {
    if (g < 0) {
      let at = load<i32>(b + AT) + 1;
      if (at == BATCH) {
        if (load<i32>(b + KIND) == TRACE) {
          status = REPLAY;
          break;
        }
        fill(b);
        at = 0;
      }
      store<i32>(b + AT, at);
      g = load<i32>(b + GFN + (<usize>at << 2));
      w = load<u8>(b + WRITE + <usize>at);
      think = load<f64>(b + THINK + (<usize>at << 3));
    }
    if (load<u8>(state + <usize>g) != READY) break;
    const word = touched + (<usize>(g >>> 5) << 2), bit = 1 << (g & 31), bits = load<i32>(word);
    if ((bits & bit) == 0) {
      store<i32>(word, bits | bit);
      minor++;
    }
    if (w) {
      const v = load<u8>(writes + <usize>g);
      if (v < 255) store<u8>(writes + <usize>g, v + 1);
      written++;
    }
    // A touch takes at least 1 ns, so a slice always moves the clock forward.
    t += max<f64>(1, think);
    g = -1;
    done++;
  }
  store<f64>(OUTCOME + O_T, t);
  store<f64>(OUTCOME + O_SECOND, think);
  store<i32>(OUTCOME + O_COUNTS, done);
  store<i32>(OUTCOME + O_COUNTS + 4, minor);
  store<i32>(OUTCOME + O_COUNTS + 8, written);
  store<i32>(OUTCOME + O_COUNTS + 12, g);
  store<i32>(OUTCOME + O_COUNTS + 16, w);
  return status;
}

/** advance() reached `to`. */
const REACHED = 0;
/** The work budget ran out (the run stops: src/kernel/work.ts). */
const SPENT = 2;
/** `out` is full: JavaScript marks those pages and calls again. */
const FULL = 3;

/**
 * The precopy dirtier's touches of the pattern at `b` (src/precopy/dirtying.ts): from time `t`
 * while t < `to`, each a unit of the work budget `left` and, throttled, `share` of the vCPU's
 * time; the pages written go to `out` (i32), at most `cap` of them, in order.
 */
export function advance(b: usize, t: f64, to: f64, share: f64, left: f64, out: usize, cap: i32): i32 {
  let n = 0, status = REACHED;
  while (t < to) {
    if (n == cap) {
      status = FULL;
      break;
    }
    let at = load<i32>(b + AT) + 1;
    if (at == BATCH && load<i32>(b + KIND) == TRACE) {
      status = REPLAY;
      break;
    }
    left -= 1;
    if (left < 0) {
      status = SPENT;
      break;
    }
    if (at == BATCH) {
      fill(b);
      at = 0;
    }
    store<i32>(b + AT, at);
    if (load<u8>(b + WRITE + <usize>at)) {
      store<i32>(out + (<usize>n << 2), load<i32>(b + GFN + (<usize>at << 2)));
      n++;
    }
    // Throttling stretches the time between touches: the vCPU sleeps (1 − share) of it.
    t += max<f64>(1, load<f64>(b + THINK + (<usize>at << 3))) / share;
  }
  store<f64>(OUTCOME + O_T, t);
  store<f64>(OUTCOME + O_SECOND, left);
  store<i32>(OUTCOME + O_COUNTS, n);
  return status;
}
