import type { Rng } from '../kernel/rng.ts';
import type { Scenario } from '../scenario/schema.ts';
import { loadTrace, type Trace } from '../trace/format.ts';
import { lcgMask, lcgNext } from './lcg.ts';

/**
 * One vCPU's stream of page touches: sequential (each vCPU sweeps its own slice of the region),
 * uniform random over the region, shuffled (every page once per pass, in an LCG order), or a hot set (a working set at the start of the region hit
 * with probability hotProbability, the rest uniform). memtest is a write-only sequential sweep.
 * trace replays a recorded trace in a loop from the start of the region, each vCPU from its own
 * offset, with the trace's gaps as think times (docs/traces.md).
 */
export class AccessPattern {
  private readonly lo: number;
  private readonly count: number;
  private cursor: number;
  private readonly kind: Scenario['workload']['kind'];
  private readonly hotPages: number;
  private readonly hotProbability: number;
  readonly writeFraction: number;
  private readonly meanThinkNs: number;
  private readonly constantThink: boolean;
  private readonly trace: Trace | null;
  /** `shuffled`: the LCG's state and mask (src/workload/lcg.ts). */
  private lcg = 0;
  private readonly lcgMask: number;
  /** The op of the trace record last returned by next(). */
  private traceOp = 0;

  constructor(scenario: Scenario, vcpu: number, private readonly rng: Rng) {
    const w = scenario.workload;
    const region = w.region ?? { start: 0, count: scenario.memory.pages };
    this.lo = region.start;
    this.kind = w.kind;
    this.trace = w.kind === 'trace' ? loadTrace(w.trace!) : null;
    this.count = this.trace ? this.trace.gfns.length : region.count;
    this.cursor = Math.floor((vcpu * this.count) / w.vcpus);
    this.lcgMask = w.kind === 'shuffled' ? lcgMask(this.count) : 0;
    // Each vCPU enters the order at its own place, as a guest found mid-pass.
    if (w.kind === 'shuffled') this.lcg = rng.int(0, this.count - 1);
    this.hotPages = Math.min(w.hotPages, region.count);
    this.hotProbability = w.hotProbability;
    this.writeFraction = w.kind === 'memtest' ? 1 : w.writeFraction;
    this.meanThinkNs = w.thinkNs;
    this.constantThink = w.think === 'constant';
  }

  /** Think time before the next touch: the trace's gap (the caller adds the 1 ns floor), else thinkNs, constant or exponential. */
  thinkNs(): number {
    if (this.trace === null) return this.constantThink ? this.meanThinkNs : this.rng.exp(this.meanThinkNs);
    const c = this.cursor;
    return c === 0 ? 0 : this.trace.times[c]! - this.trace.times[c - 1]!;
  }

  /** The next gfn touched. */
  next(): number {
    switch (this.kind) {
      case 'sequential':
      case 'memtest': {
        const g = this.lo + this.cursor;
        this.cursor = this.cursor + 1 === this.count ? 0 : this.cursor + 1;
        return g;
      }
      case 'random':
        return this.lo + this.rng.int(0, this.count - 1);
      case 'shuffled':
        return this.lo + (this.lcg = lcgNext(this.lcg, this.lcgMask, this.count));
      case 'hot-set':
        // One draw site for both sets: each site of a draw is a copy of the generator's step
        // for V8 to inline, and the vCPUs' loop has room for few.
        return this.lo + this.rng.int(0, (this.rng.chance(this.hotProbability) ? this.hotPages : this.count) - 1);
      case 'trace': {
        const c = this.cursor, t = this.trace!;
        this.cursor = c + 1 === this.count ? 0 : c + 1;
        this.traceOp = t.ops[c]!;
        return this.lo + t.gfns[c]!;
      }
      case 'idle':
        return -1;
    }
  }

  isWrite(): boolean {
    if (this.trace !== null) return this.traceOp === 1;
    return this.writeFraction >= 1 || (this.writeFraction > 0 && this.rng.chance(this.writeFraction));
  }
}
