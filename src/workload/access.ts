import type { Rng } from '../kernel/rng.ts';
import type { Scenario } from '../scenario/schema.ts';

/**
 * One vCPU's stream of page touches: sequential (each vCPU sweeps its own slice of the region),
 * uniform random over the region, or a hot set (a working set at the start of the region hit
 * with probability hotProbability, the rest uniform). memtest is a write-only sequential sweep.
 */
export class AccessPattern {
  private readonly lo: number;
  private readonly count: number;
  private cursor: number;
  private readonly kind: Scenario['workload']['kind'];
  private readonly hotPages: number;
  private readonly hotProbability: number;
  readonly writeFraction: number;

  constructor(scenario: Scenario, vcpu: number, private readonly rng: Rng) {
    const w = scenario.workload;
    const region = w.region ?? { start: 0, count: scenario.memory.pages };
    this.lo = region.start;
    this.count = region.count;
    this.kind = w.kind;
    this.cursor = Math.floor((vcpu * region.count) / w.vcpus);
    this.hotPages = Math.min(w.hotPages, region.count);
    this.hotProbability = w.hotProbability;
    this.writeFraction = w.kind === 'memtest' ? 1 : w.writeFraction;
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
      case 'hot-set':
        return this.rng.float() < this.hotProbability
          ? this.lo + this.rng.int(0, this.hotPages - 1)
          : this.lo + this.rng.int(0, this.count - 1);
      case 'idle':
        return -1;
    }
  }

  isWrite(): boolean {
    return this.writeFraction >= 1 || (this.writeFraction > 0 && this.rng.float() < this.writeFraction);
  }
}
