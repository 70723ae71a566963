import { Rng } from '../kernel/rng.ts';
import type { Scenario } from '../scenario/schema.ts';
import { AccessPattern } from '../workload/access.ts';
import type { DirtyLog } from './dirty-log.ts';

/**
 * A guest workload as seen by the migration source: the pages it writes. Writes are applied in
 * bulk when the migration thread looks (at a dirty-bitmap sync): only the set of pages written in
 * a period matters to precopy, so nothing is simulated per write between syncs.
 */
export interface Dirtier {
  /**
   * Applies the writes of the interval [from, to) to `log` while the vCPUs run `share` of the
   * time (1 − auto-converge's throttle).
   */
  advance(from: number, to: number, share: number, log: DirtyLog): void;
}

/** Runs of `steps` from `cursor` in a cycle of `cycle` steps: calls `fn` per step, at most one cycle. */
function cycleSteps(cursor: number, steps: number, cycle: number, fn: (step: number) => void): number {
  const n = Math.min(steps, cycle);
  for (let i = 0; i < n; i++) fn((cursor + i) % cycle);
  return (cursor + steps) % cycle;
}

/** Time budget carried between intervals so a slow rate still advances: whole steps only. */
class Pace {
  private carry = 0;

  constructor(private readonly stepNs: number) {}

  steps(from: number, to: number, share: number): number {
    const t = this.carry + (to - from) * share;
    const n = Math.floor(t / this.stepNs);
    this.carry = t - n * this.stepNs;
    return n;
  }
}

/** stress --vm-keep: each worker writes one byte per page over its slice, then reads it back, for ever. */
class Stress implements Dirtier {
  private readonly cursors: number[];
  private readonly pace: Pace;
  private readonly pagesPer: number;

  constructor(private readonly start: number, private readonly workers: number, bytes: number, pageSize: number, pageNs: number) {
    this.pagesPer = Math.ceil(bytes / pageSize);
    this.cursors = new Array<number>(workers).fill(0);
    this.pace = new Pace(pageNs);
  }

  advance(from: number, to: number, share: number, log: DirtyLog): void {
    const steps = this.pace.steps(from, to, share);
    const p = this.pagesPer;
    for (let w = 0; w < this.workers; w++) {
      const base = this.start + w * p;
      // A cycle is a write pass (steps 0..p−1) then a read-back pass (p..2p−1).
      this.cursors[w] = cycleSteps(this.cursors[w]!, steps, 2 * p, (s) => {
        if (s < p) log.mark(base + s);
      });
    }
  }
}

/** fio writing blocks into a fixed region, sequentially (wrapping) or at random block offsets. */
class Fio implements Dirtier {
  private cursor = 0;
  private readonly pace: Pace;
  private readonly blockPages: number;
  private readonly blocks: number;

  constructor(private readonly region: { start: number; count: number }, blockBytes: number, bytesPerSec: number,
    pageSize: number, private readonly rng: Rng | null) {
    this.blockPages = Math.max(1, Math.ceil(blockBytes / pageSize));
    this.blocks = Math.ceil(region.count / this.blockPages);
    this.pace = new Pace((blockBytes / bytesPerSec) * 1e9);
  }

  private writeBlock(b: number, log: DirtyLog): void {
    const lo = this.region.start + b * this.blockPages;
    const hi = Math.min(lo + this.blockPages, this.region.start + this.region.count);
    for (let g = lo; g < hi; g++) log.mark(g);
  }

  advance(from: number, to: number, share: number, log: DirtyLog): void {
    const n = this.pace.steps(from, to, share);
    if (this.rng === null) {
      this.cursor = cycleSteps(this.cursor, n, this.blocks, (b) => this.writeBlock(b, log));
      return;
    }
    // Past 20 draws per block every block is hit but for e^−20 of them: write them all.
    if (n >= 20 * this.blocks) for (let b = 0; b < this.blocks; b++) this.writeBlock(b, log);
    else for (let i = 0; i < n; i++) this.writeBlock(this.rng.int(0, this.blocks - 1), log);
  }
}

/** The vCPUs' access patterns (workload section), each on its own clock; writes dirty. */
class Pattern implements Dirtier {
  private readonly patterns: AccessPattern[];
  private readonly clocks: number[];

  constructor(scenario: Scenario) {
    const n = scenario.workload.kind === 'idle' ? 0 : scenario.workload.vcpus;
    // Streams of their own: the destination's vCPUs draw from theirs after the switch.
    this.patterns = Array.from({ length: n }, (_, v) => new AccessPattern(scenario, v, new Rng(scenario.seed, `source-vcpu${v}`)));
    this.clocks = new Array<number>(n).fill(0);
  }

  advance(_from: number, to: number, share: number, log: DirtyLog): void {
    for (let v = 0; v < this.patterns.length; v++) {
      const p = this.patterns[v]!;
      let t = this.clocks[v]!;
      while (t < to) {
        const g = p.next();
        if (p.isWrite()) log.mark(g);
        // Throttling stretches the time between touches: the vCPU sleeps (1 − share) of it.
        t += Math.max(1, p.thinkNs()) / share;
      }
      this.clocks[v] = t;
    }
  }
}

const NONE: Dirtier = { advance: () => {} };

export function makeDirtier(s: Scenario): Dirtier {
  const d = s.precopy.dirtying, pageSize = s.memory.pageSize;
  switch (d.kind) {
    case 'none':
      return NONE;
    case 'workload':
      return new Pattern(s);
    case 'stress':
      return new Stress(d.start, d.workers, d.bytesPerWorker, pageSize, d.pageNs);
    case 'fio':
      return new Fio(d.region, d.blockBytes, d.bytesPerSec, pageSize, d.order === 'random' ? new Rng(s.seed, 'fio') : null);
  }
}
