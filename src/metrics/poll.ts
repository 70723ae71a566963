import { argCheck, numArg } from '../io/args.ts';
import type { Core } from '../core.ts';
import { Kernel } from '../kernel/kernel.ts';
import type { MigrationStatus } from '../faults/recovery.ts';
import type { Precopy } from '../precopy/precopy.ts';

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
    argCheck(kernel instanceof Kernel, 'CounterPoll.kernel', 'must be the Kernel whose clock it samples');
    numArg('CounterPoll.intervalNs', intervalNs, 1, Number.MAX_SAFE_INTEGER);
    argCheck(typeof read === 'function', 'CounterPoll.read', 'must be a function returning the counters');
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

/** What a query-migrate poll reads after precopy: the core's bytes on top of precopy's; mbps since the last poll. */
export function coreCounters(k: Kernel, core: Core, pre: Precopy | null, status: () => MigrationStatus): () => Omit<CounterSample, 't-ms'> {
  let lastBytes = -1, lastT = k.now;
  return () => {
    const bytes = (pre?.bytes ?? 0) + core.coreBytes;
    const mbps = lastBytes >= 0 && k.now > lastT ? ((bytes - lastBytes) * 8) / ((k.now - lastT) / 1e3) : 0;
    lastBytes = bytes;
    lastT = k.now;
    return {
      status: status(),
      transferred: bytes,
      remaining: core.memory.pending * core.memory.pageSize,
      'dirty-sync-count': pre?.syncs ?? 0,
      mbps: Math.round(mbps * 100) / 100,
      'expected-downtime': pre ? Math.round(pre.convergence.expectedDowntimeMs) : 0,
      'dirty-pages-rate': pre?.convergence.dirtyPagesRate ?? 0,
      'cpu-throttle-percentage': pre?.convergence.throttlePct ?? 0,
      'postcopy-requests': core.source.requestsReceived,
    };
  };
}
