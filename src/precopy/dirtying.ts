import { objArg } from '../io/args.ts';
import { Rng } from '../kernel/rng.ts';
import type { Scenario } from '../scenario/schema.ts';
import { AccessPattern } from '../workload/access.ts';
import { UNBOUNDED, type WorkBudget } from '../kernel/work.ts';
import { FRESH, type Alloc } from '../memory/arena.ts';
import { Touches, type Space } from '../memory/space.ts';
import type { NextMember } from '../memory/skip-list.ts';
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
  /** Removes from `zero` the pages the workload had written before migration began. */
  prime(zero: NextMember): void;
}

function primeRange(zero: NextMember, start: number, count: number): void {
  for (let g = start; g < start + count; g++) zero.remove(g);
}

/**
 * Steps [cursor, cursor + steps) of a cycle of `cycle` steps, as at most three runs within the
 * cycle (one whole cycle at most): calls `fn(from, to)` per run. Returns the new cursor.
 */
function cycleRuns(cursor: number, steps: number, cycle: number, fn: (from: number, to: number) => void): number {
  if (steps >= cycle) fn(0, cycle);
  else if (cursor + steps <= cycle) fn(cursor, cursor + steps);
  else {
    fn(cursor, cycle);
    fn(0, cursor + steps - cycle);
  }
  return (cursor + steps) % cycle;
}

/** Pages an advance hands back to be marked at a time. */
const OUT = 4096;

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

  prime(zero: NextMember): void {
    primeRange(zero, this.start, this.workers * this.pagesPer);
  }

  advance(from: number, to: number, share: number, log: DirtyLog): void {
    const steps = this.pace.steps(from, to, share);
    const p = this.pagesPer;
    for (let w = 0; w < this.workers; w++) {
      const base = this.start + w * p;
      // A cycle is a write pass (steps 0..p−1) then a read-back pass (p..2p−1).
      this.cursors[w] = cycleRuns(this.cursors[w]!, steps, 2 * p, (from, to) => {
        if (from < p) log.markRange(base + from, base + Math.min(to, p));
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

  /** Writes blocks from..to−1. */
  private write(from: number, to: number, log: DirtyLog): void {
    const end = this.region.start + this.region.count;
    log.markRange(this.region.start + from * this.blockPages, Math.min(this.region.start + to * this.blockPages, end));
  }

  prime(zero: NextMember): void {
    primeRange(zero, this.region.start, this.region.count);
  }

  advance(from: number, to: number, share: number, log: DirtyLog): void {
    const n = this.pace.steps(from, to, share);
    if (this.rng === null) {
      this.cursor = cycleRuns(this.cursor, n, this.blocks, (from, to) => this.write(from, to, log));
      return;
    }
    // Past 20 draws per block every block is hit but for e^−20 of them: write them all.
    if (n >= 20 * this.blocks) this.write(0, this.blocks, log);
    else for (let i = 0; i < n; i++) {
      const b = this.rng.int(0, this.blocks - 1);
      this.write(b, b + 1, log);
    }
  }
}

/**
 * The vCPUs' access patterns (workload section), each on its own clock; writes dirty. Every
 * touch is drawn, all of an interval's in the one event of its sync: the run's WorkBudget bounds
 * them.
 */
class Pattern implements Dirtier {
  private readonly patterns: AccessPattern[];
  private readonly clocks: number[];
  private readonly space: Space;
  /** The pages an advance wrote, in order, OUT at a time. */
  private readonly written: Int32Array;

  constructor(scenario: Scenario, private readonly work: WorkBudget, alloc: Alloc) {
    const n = scenario.workload.kind === 'idle' ? 0 : scenario.workload.vcpus;
    const space = (this.space = alloc.space());
    // Streams of their own: the destination's vCPUs draw from theirs after the switch.
    this.patterns = Array.from({ length: n }, (_, v) => new AccessPattern(scenario, v, new Rng(scenario.seed, `source-vcpu${v}`), space));
    this.clocks = new Array<number>(n).fill(0);
    this.written = space.int32(n > 0 ? OUT : 0);
  }

  prime(): void {}

  advance(_from: number, to: number, share: number, log: DirtyLog): void {
    const space = this.space, written = this.written, times = space.outcomeTimes;
    let left = this.work.left;
    for (let v = 0; v < this.patterns.length; v++) {
      const p = this.patterns[v]!;
      let t = this.clocks[v]!;
      // The touches run in WebAssembly (wasm/touches.ts); the pages they wrote are marked here.
      for (;;) {
        const status = space.advance(p.block, t, to, share, left, written.byteOffset, OUT);
        t = times[0]!;
        left = times[1]!;
        const n = space.outcomeCounts[0]!;
        for (let i = 0; i < n; i++) log.mark(written[i]!);
        if (status === Touches.DONE) break;
        if (status === Touches.SPENT) return this.work.spent('the guest\'s touches in precopy');
        if (status === Touches.REPLAY) p.replayed();
      }
      this.clocks[v] = t;
      this.work.left = left;
    }
  }
}

const NONE: Dirtier = { advance: () => {}, prime: () => {} };

/** `work`: the run's bound on work inside events (Kernel.work); `alloc`: see `new Emulator`. */
export function makeDirtier(s: Scenario, work: WorkBudget = UNBOUNDED, alloc: Alloc = FRESH): Dirtier {
  objArg('makeDirtier.scenario', s, "a parsed scenario (parseScenario(input))");
  const d = s.precopy.dirtying, pageSize = s.memory.pageSize;
  switch (d.kind) {
    case 'none':
      return NONE;
    case 'workload':
      return new Pattern(s, work, alloc);
    case 'stress':
      return new Stress(d.start, d.workers, d.bytesPerWorker, pageSize, d.pageNs);
    case 'fio':
      return new Fio(d.region, d.blockBytes, d.bytesPerSec, pageSize, d.order === 'random' ? new Rng(s.seed, 'fio') : null);
  }
}
