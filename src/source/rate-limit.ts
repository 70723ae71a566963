import { WINDOW_NS } from '../precopy/convergence.ts';

/**
 * QEMU's migration-thread rate limit in postcopy (`max-postcopy-bandwidth`): a budget of
 * bandwidth/10 bytes per 100 ms window (`BUFFER_DELAY`). Once the bytes written in a window
 * exceed it (`qemu_file_rate_limit`) the thread sleeps to the window's end (`migration_rate_limit`);
 * the first check after that starts a new window (`migration_update_counters`).
 */
export class RateLimit {
  private readonly budget: number;
  private windowStart = -1;
  private used = 0;

  constructor(bytesPerSec: number) {
    this.budget = bytesPerSec / 10;
  }

  /** True when the budget of the window running at `now` is spent. */
  exceeded(now: number): boolean {
    if (this.windowStart < 0 || now >= this.windowStart + WINDOW_NS) {
      this.windowStart = now;
      this.used = 0;
    }
    return this.used > this.budget;
  }

  /** When the current window ends. */
  get windowEnd(): number {
    return this.windowStart + WINDOW_NS;
  }

  /** The thread wrote `bytes` into the stream. */
  add(bytes: number): void {
    this.used += bytes;
  }
}
