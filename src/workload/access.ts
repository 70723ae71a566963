import type { Rng } from '../kernel/rng.ts';
import type { Space } from '../memory/space.ts';
import type { Scenario } from '../scenario/schema.ts';
import { loadTrace, type Trace } from '../trace/format.ts';
import { lcgMask } from './lcg.ts';

/** Touches a pattern draws at a time (wasm/touches.ts's BATCH). */
export const BATCH = 64;

// A pattern's block in its Space, laid out as wasm/touches.ts reads it: the drawn touches' think
// times (f64), pages (i32) and writes (u8); the stream's state (i32: pure-rand's four words, the
// sequential cursor, the shuffled order's LCG value), the current touch, the parameters.
const THINK = 0;
const GFN = THINK + 8 * BATCH;
/** The i32 words from the stream's state on: STATE_WORDS of state, then AT, then the integer parameters. */
const WORDS = GFN + 4 * BATCH;
const STATE_WORDS = 6;
const AT = STATE_WORDS;
/** The f64 parameters: hot probability, write fraction, mean think time. */
const DOUBLES = WORDS + 4 * 14;
const WRITE = DOUBLES + 8 * 3;
const BLOCK_BYTES = WRITE + BATCH;

/** The patterns wasm/touches.ts draws, by its numbers for them; a trace's records JavaScript replays. */
const enum DrawnKind {
  SEQUENTIAL = 0,
  RANDOM = 1,
  SHUFFLED = 2,
  HOT_SET = 3,
  TRACE = 4,
}

const DRAWN: Record<Scenario['workload']['kind'], DrawnKind> = {
  sequential: DrawnKind.SEQUENTIAL,
  memtest: DrawnKind.SEQUENTIAL,
  random: DrawnKind.RANDOM,
  shuffled: DrawnKind.SHUFFLED,
  'hot-set': DrawnKind.HOT_SET,
  trace: DrawnKind.TRACE,
  // Draws nothing: an idle vCPU only finishes the touches it was driven to.
  idle: DrawnKind.SEQUENTIAL,
};

/**
 * One vCPU's stream of page touches: sequential (each vCPU sweeps its own slice of the region),
 * uniform random over the region, shuffled (every page once per pass, in an LCG order), or a hot
 * set (a working set at the start of the region hit with probability hotProbability, the rest
 * uniform). memtest is a write-only sequential sweep. trace replays a recorded trace in a loop
 * from the start of the region, each vCPU from its own offset, with the trace's gaps as think
 * times (docs/traces.md).
 *
 * A touch is its page, then whether it writes, then the think time after it, drawn in that order
 * from the vCPU's own stream whenever the touch happens: drawing them ahead gives the same
 * touches. They are drawn BATCH at a time in WebAssembly (wasm/touches.ts), into the pattern's
 * block in `space`, where a touch of a random pattern costs about half what it did in
 * JavaScript (docs/benchmark.md); take() hands them out one by one, and the vCPUs' slices read
 * them there.
 */
export class AccessPattern {
  /** The block's offset in the space. */
  readonly block: number;
  /** The drawn touches: page, write (1) or read (0), think time after it (ns; the caller adds the 1 ns floor). */
  readonly gfn: Int32Array;
  readonly write: Uint8Array;
  readonly think: Float64Array;
  private readonly words: Int32Array;
  private readonly trace: Trace | null;
  private readonly lo: number;
  private readonly count: number;
  /** trace: the record the next touch replays. */
  private cursor: number;

  constructor(scenario: Scenario, vcpu: number, rng: Rng, private readonly space: Space) {
    const w = scenario.workload;
    const region = w.region ?? { start: 0, count: scenario.memory.pages };
    const b = (this.block = space.take(BLOCK_BYTES)), buffer = space.memory.buffer;
    this.gfn = new Int32Array(buffer, b + GFN, BATCH);
    this.write = new Uint8Array(buffer, b + WRITE, BATCH);
    this.think = new Float64Array(buffer, b + THINK, BATCH);
    this.words = new Int32Array(buffer, b + WORDS, 14);
    this.lo = region.start;
    this.trace = w.kind === 'trace' ? loadTrace(w.trace!) : null;
    const count = (this.count = this.trace ? this.trace.gfns.length : region.count);
    this.cursor = Math.floor((vcpu * count) / w.vcpus);
    // Each vCPU enters the order at its own place, as a guest found mid-pass.
    const lcg = w.kind === 'shuffled' ? rng.int(0, count - 1) : 0;
    this.words.set([
      ...rng.words(), this.cursor, lcg,
      BATCH - 1, DRAWN[w.kind], region.start, count, Math.min(w.hotPages, region.count),
      w.kind === 'shuffled' ? lcgMask(count) : 0, w.think === 'constant' ? 1 : 0,
    ]);
    new Float64Array(buffer, b + DOUBLES, 3).set([w.hotProbability, w.kind === 'memtest' ? 1 : w.writeFraction, w.thinkNs]);
  }

  /** Moves to the next touch and returns its index in the arrays. */
  take(): number {
    let at = this.words[AT]! + 1;
    if (at === BATCH) {
      if (this.trace === null) this.space.draw(this.block);
      else this.replay(this.trace);
      at = 0;
    }
    this.words[AT] = at;
    return at;
  }

  /** A trace's block ran out in a slice: the next records go in, and the next touch is the first. */
  replayed(): void {
    this.replay(this.trace!);
    this.words[AT] = -1;
  }

  /** The next BATCH records of the trace, from the cursor on. */
  private replay(t: Trace): void {
    for (let i = 0; i < BATCH; i++) {
      const c = this.cursor;
      this.cursor = c + 1 === this.count ? 0 : c + 1;
      this.gfn[i] = this.lo + t.gfns[c]!;
      this.write[i] = t.ops[c] === 1 ? 1 : 0;
      // The gap to the record after this one (none after the last: the loop starts again).
      this.think[i] = this.cursor === 0 ? 0 : t.times[this.cursor]! - t.times[this.cursor - 1]!;
    }
  }
}
