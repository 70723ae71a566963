import type { Kernel } from '../kernel/kernel.ts';
import { Rng } from '../kernel/rng.ts';
import type { Link } from '../link/link.ts';
import type { FaultSpec, Scenario } from '../scenario/schema.ts';

/** What the schedule does to the rest of the emulator when a cut or crash starts. */
export interface FaultTarget {
  /** The connection fails at now for `downNs`; `crash`: the source process died too. */
  cut(downNs: number, crash: boolean): void;
}

/** A fault with its start time resolved. */
export interface Timed {
  spec: FaultSpec;
  start: number;
  end: number;
}

/** The scenario's faults with times from `origin` on: a `window` draws from `rng`, in list order. */
export function timedFaults(scenario: Scenario, rng: Rng, origin: number): Timed[] {
  return scenario.faults.map((spec) => {
    const start = origin + (spec.at ?? rng.int(spec.window!.from, spec.window!.to));
    return { spec, start, end: start + (spec.kind === 'source-crash' ? spec.restartNs : spec.durationNs) };
  });
}

/**
 * The scenario's fault section, resolved to times: a `window` draws its time uniformly from the
 * 'faults' stream, in list order, before the run starts. Cuts and crashes and the edges of
 * degrade windows are kernel events; back-channel loss is looked up when a FAULT record is
 * written, so a loss window alone never keeps the run going.
 */
export class FaultSchedule {
  private readonly rng: Rng;
  private readonly faults: Timed[];
  private readonly losses: Timed[];
  private readonly degrades: Timed[];
  /** FAULT records the back-channel lost. */
  lostFaultRecords = 0;

  constructor(
    private readonly kernel: Kernel,
    scenario: Scenario,
    private readonly links: readonly Link[],
    target: FaultTarget,
  ) {
    this.rng = new Rng(scenario.seed, 'faults');
    // Faults act on the postcopy connection: after a precopy phase their times count from its start.
    this.faults = timedFaults(scenario, this.rng, kernel.now);
    this.losses = this.faults.filter((f) => f.spec.kind === 'backchannel-loss');
    this.degrades = this.faults.filter((f) => f.spec.kind === 'degrade');
    const cutKind = kernel.register((i) => {
      const f = this.faults[i]!;
      target.cut(f.end - f.start, f.spec.kind === 'source-crash');
    });
    const speedKind = kernel.register(() => this.applySpeed());
    this.faults.forEach((f, i) => {
      if (f.spec.kind === 'link-cut' || f.spec.kind === 'source-crash') kernel.at(f.start, cutKind, i);
      else if (f.spec.kind === 'degrade') {
        kernel.at(f.start, speedKind);
        kernel.at(f.end, speedKind);
      }
    });
  }

  /** When each fault starts (ns), in the scenario's order. */
  get startTimes(): number[] {
    return this.faults.map((f) => f.start);
  }

  /** The latest time at or before `now` when an injected fault ended (0 when none has). */
  lastEndBefore(now: number): number {
    let t = 0;
    for (let i = 0; i < this.faults.length; i++) {
      const end = this.faults[i]!.end;
      if (end <= now && end > t) t = end;
    }
    return t;
  }

  /** Whether a FAULT record written now is lost (a draw only inside a loss window). */
  loseFault(): boolean {
    // Asked for every FAULT record: without loss windows there is nothing to look at.
    if (this.losses.length === 0) return false;
    const now = this.kernel.now;
    let keep = 1;
    for (const f of this.losses) if (f.start <= now && now < f.end && f.spec.kind === 'backchannel-loss') keep *= 1 - f.spec.probability;
    if (keep === 1 || this.rng.chance(keep)) return false;
    this.lostFaultRecords++;
    return true;
  }

  /** Sets both directions to the latest degrade still running, or back to the scenario's values. */
  private applySpeed(): void {
    const now = this.kernel.now;
    let active: Timed | undefined;
    for (const f of this.degrades) if (f.start <= now && now < f.end) active = f;
    for (const l of this.links) {
      const d = active?.spec.kind === 'degrade' ? active.spec : undefined;
      l.setSpeed(d?.rateMbps ?? l.params.rateMbps, d?.latencyNs ?? l.params.latencyNs);
    }
  }
}
