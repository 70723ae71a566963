import { numArg, objArg } from '../io/args.ts';
import type { Scenario } from '../scenario/schema.ts';

/** QEMU's BUFFER_DELAY: counters and the rate limit work in 100 ms windows. */
export const WINDOW_NS = 100_000_000;
/** Dirty rate and auto-converge look at periods of at least 1 s (migration_bitmap_sync). */
const RATE_PERIOD_NS = 1_000_000_000;

/**
 * QEMU's switchover arithmetic (shared/reference/migration.md §1): every 100 ms window the
 * bandwidth is what the thread actually pushed in it; threshold = bandwidth × downtime-limit,
 * with avail-switchover-bandwidth in its place when set; expected-downtime = bytes dirty at the
 * last sync / bandwidth. At syncs at least 1 s apart: dirty-pages-rate and auto-converge.
 */
export class Convergence {
  /** Bytes: switch over when less than this is left (0 until the first window ends). */
  threshold = 0;
  /** Bytes per ms measured in the last window. */
  bandwidth = 0;
  mbps = 0;
  pagesPerSecond = 0;
  expectedDowntimeMs = 0;
  dirtyPagesRate = 0;
  throttlePct = 0;
  /** Bytes left right after the last sync (QEMU's dirty_bytes_last_sync). */
  dirtyBytesLastSync = 0;
  private windowStart: number;
  private windowBytes = 0;
  private windowPages = 0;
  private periodStart: number;
  private periodDirty = 0;
  private periodBytes = 0;
  private highCount = 0;

  constructor(private readonly p: Scenario['precopy'], start: number) {
    objArg('Convergence.params', p, "a parsed scenario's precopy section (parseScenario(input).precopy)");
    numArg('Convergence.start', start, 0, Number.MAX_SAFE_INTEGER);
    this.windowStart = start;
    this.periodStart = start;
  }

  /** The end of the current window. */
  get windowEnd(): number {
    return this.windowStart + WINDOW_NS;
  }

  /** migration_update_counters: at most once per window, from the totals sent so far. */
  update(now: number, bytes: number, pages: number): void {
    if (now < this.windowEnd) return;
    const spentMs = (now - this.windowStart) / 1e6, sent = bytes - this.windowBytes;
    this.bandwidth = sent / spentMs;
    const switchover = this.p.availSwitchoverBandwidth > 0 ? this.p.availSwitchoverBandwidth / 1000 : this.bandwidth;
    this.threshold = switchover * this.p.downtimeLimitMs;
    this.mbps = (sent * 8) / (spentMs / 1000) / 1e6;
    this.pagesPerSecond = (pages - this.windowPages) / (spentMs / 1000);
    // "If we haven't sent anything, we don't want to recalculate."
    if (this.dirtyPagesRate > 0 && sent > 10_000) this.expectedDowntimeMs = this.dirtyBytesLastSync / switchover;
    this.windowStart = now;
    this.windowBytes = bytes;
    this.windowPages = pages;
  }

  /** Bytes the rate limit still allows in this window (Infinity without max-bandwidth). */
  budget(bytes: number): number {
    return this.p.maxBandwidth > 0 ? this.p.maxBandwidth / 10 - (bytes - this.windowBytes) : Infinity;
  }

  /**
   * A dirty-bitmap sync found `newlyDirty` pages not already pending and left `remainingBytes`.
   * Returns true when auto-converge raised the throttle.
   */
  synced(now: number, newlyDirty: number, remainingBytes: number, bytesSent: number, pageSize: number): boolean {
    this.dirtyBytesLastSync = remainingBytes;
    this.periodDirty += newlyDirty;
    if (now <= this.periodStart + RATE_PERIOD_NS) return false;
    const xfer = bytesSent - this.periodBytes, dirtied = this.periodDirty * pageSize;
    this.dirtyPagesRate = Math.round((this.periodDirty * 1e9) / (now - this.periodStart));
    this.periodStart = now;
    this.periodDirty = 0;
    this.periodBytes = bytesSent;
    // migration_trigger_throttle: dirtying above 50 % of sending, twice, raises the throttle.
    if (!this.p.autoConverge || dirtied <= (xfer * this.p.throttleTriggerPct) / 100 || ++this.highCount < 2) return false;
    this.highCount = 0;
    this.throttlePct = this.throttlePct === 0
      ? this.p.throttleInitialPct
      : Math.min(this.throttlePct + this.p.throttleIncrementPct, this.p.throttleMaxPct);
    return true;
  }

  /** Share of time the vCPUs run: a throttled vCPU sleeps pct/(1−pct) × 10 ms per 10 ms slice. */
  get runShare(): number {
    return 1 - this.throttlePct / 100;
  }
}
