import type { Kernel } from '../kernel/kernel.ts';
import type { MigrationStatus } from '../faults/recovery.ts';

/** One poll of the query-migrate counters (guestperf reads them every 50 ms). */
export interface CounterSample {
  't-ms': number;
  status: MigrationStatus;
  transferred: number;
  remaining: number;
  'dirty-sync-count': number;
  mbps: number;
  'expected-downtime': number;
  'dirty-pages-rate': number;
  'cpu-throttle-percentage': number;
  'postcopy-requests': number;
}

/**
 * Polls the counters every `intervalNs` on a kernel, as a management tool polls query-migrate.
 * Like the core's timeline it stops rescheduling itself once nothing else is left to happen.
 */
export class CounterPoll {
  readonly samples: CounterSample[] = [];
  private readonly kind: number;
  /** Ticks carry the round they belong to: a restart leaves the old round's tick to pass unread. */
  private round = 0;

  constructor(private readonly kernel: Kernel, private readonly intervalNs: number, private readonly read: () => Omit<CounterSample, 't-ms'>) {
    this.kind = kernel.register((round) => {
      if (round !== this.round) return;
      this.sample();
      if (kernel.pending > 0) kernel.after(this.intervalNs, this.kind, round);
    });
    kernel.at(kernel.now, this.kind, this.round);
  }

  /** Polls from now on a fresh grid (a new phase's reader). */
  restart(): void {
    this.kernel.at(this.kernel.now, this.kind, ++this.round);
  }

  /** Takes a sample now (the end of a phase), unless one was just taken. */
  sample(): void {
    const t = Math.round(this.kernel.now / 1e3) / 1e3;
    if (this.samples.at(-1)?.['t-ms'] === t) return;
    this.samples.push({ 't-ms': t, ...this.read() });
  }
}
