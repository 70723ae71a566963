import type { Kernel } from '../kernel/kernel.ts';

/** The sampled series of one run; every array has one value per sample time in `t` (ns). */
export interface TimelineData {
  intervalNs: number;
  t: number[];
  ringOccupancy: number[];
  pagesResident: number[];
  vcpusBlocked: number[];
  bytesTransferred: number[];
}

export interface TimelineProbe {
  ringOccupancy(): number;
  pagesResident(): number;
  vcpusBlocked(): number;
  bytesTransferred(): number;
}

const FIRST_INTERVAL_NS = 100_000;

/**
 * Samples the run at a fixed interval and stays bounded: when it holds 2 × maxSamples points it
 * drops every other one and doubles the interval, so any run length fits in maxSamples..2×.
 * It stops rescheduling itself when nothing else is left to happen.
 */
export class Timeline {
  readonly data: TimelineData = { intervalNs: FIRST_INTERVAL_NS, t: [], ringOccupancy: [], pagesResident: [], vcpusBlocked: [], bytesTransferred: [] };
  private readonly kind: number;

  constructor(private readonly kernel: Kernel, private readonly maxSamples: number, private readonly probe: TimelineProbe) {
    this.kind = kernel.register(() => this.sample());
    kernel.at(kernel.now, this.kind);
  }

  private sample(): void {
    const d = this.data, p = this.probe;
    d.t.push(this.kernel.now);
    d.ringOccupancy.push(p.ringOccupancy());
    d.pagesResident.push(p.pagesResident());
    d.vcpusBlocked.push(p.vcpusBlocked());
    d.bytesTransferred.push(p.bytesTransferred());
    if (d.t.length >= 2 * this.maxSamples) {
      for (const key of ['t', 'ringOccupancy', 'pagesResident', 'vcpusBlocked', 'bytesTransferred'] as const) {
        d[key] = d[key].filter((_, i) => i % 2 === 0);
      }
      d.intervalNs *= 2;
    }
    if (this.kernel.pending > 0) this.kernel.after(d.intervalNs, this.kind);
  }
}
