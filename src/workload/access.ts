import type { Rng } from '../kernel/rng.ts';
import type { Scenario } from '../scenario/schema.ts';
import { loadTrace, type Trace } from '../trace/format.ts';
import { AREA_BYTES, BATCH, DrawnKind, GFN_AT, STATE_AT, THINK_AT, WRITE_AT, fillTouches, type DrawnPattern } from './draws.ts';
import { lcgMask } from './lcg.ts';

const DRAWN: Partial<Record<Scenario['workload']['kind'], DrawnKind>> = {
  sequential: DrawnKind.SEQUENTIAL,
  memtest: DrawnKind.SEQUENTIAL,
  random: DrawnKind.RANDOM,
  shuffled: DrawnKind.SHUFFLED,
  'hot-set': DrawnKind.HOT_SET,
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
 * touches. They are drawn BATCH at a time, in WebAssembly (src/workload/draws.ts), where a touch
 * of a random pattern costs about half what it did in JavaScript (docs/benchmark.md); take()
 * hands them out one by one.
 */
export class AccessPattern implements DrawnPattern {
  /** The drawn touches and the stream's state, in one block that fills copy in and out whole. */
  private readonly block = new Uint8Array(AREA_BYTES);
  /** The drawn touches: page, write (1) or read (0), think time after it (ns; the caller adds the 1 ns floor). */
  readonly gfn = new Int32Array(this.block.buffer, GFN_AT, BATCH);
  readonly write = new Uint8Array(this.block.buffer, WRITE_AT, BATCH);
  readonly think = new Float64Array(this.block.buffer, THINK_AT, BATCH);
  /** The current touch's index in the arrays (the one take() returned last). */
  at = BATCH - 1;
  readonly kind: DrawnKind;
  readonly lo: number;
  readonly count: number;
  readonly hotPages: number;
  readonly hotProbability: number;
  readonly writeFraction: number;
  readonly meanThinkNs: number;
  readonly constantThink: boolean;
  readonly lcgMask: number;
  private readonly trace: Trace | null;
  /** trace: the record the next touch replays. */
  private cursor: number;

  constructor(scenario: Scenario, vcpu: number, rng: Rng) {
    const w = scenario.workload;
    const region = w.region ?? { start: 0, count: scenario.memory.pages };
    this.lo = region.start;
    // trace replays its records in JavaScript, idle draws nothing: their kind is never drawn.
    this.kind = DRAWN[w.kind] ?? DrawnKind.SEQUENTIAL;
    this.trace = w.kind === 'trace' ? loadTrace(w.trace!) : null;
    this.count = this.trace ? this.trace.gfns.length : region.count;
    this.cursor = Math.floor((vcpu * this.count) / w.vcpus);
    this.lcgMask = w.kind === 'shuffled' ? lcgMask(this.count) : 0;
    // Each vCPU enters the order at its own place, as a guest found mid-pass.
    const lcg = w.kind === 'shuffled' ? rng.int(0, this.count - 1) : 0;
    this.hotPages = Math.min(w.hotPages, region.count);
    this.hotProbability = w.hotProbability;
    this.writeFraction = w.kind === 'memtest' ? 1 : w.writeFraction;
    this.meanThinkNs = w.thinkNs;
    this.constantThink = w.think === 'constant';
    // pure-rand's four words of the stream, the sequential cursor and the shuffled order's value.
    new Int32Array(this.block.buffer, STATE_AT, 6).set([...rng.words(), this.cursor, lcg]);
  }

  /** Moves to the next touch and returns its index in the arrays. */
  take(): number {
    if (++this.at === BATCH) {
      if (this.trace === null) fillTouches(this, this.block);
      else this.replay(this.trace);
      this.at = 0;
    }
    return this.at;
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
