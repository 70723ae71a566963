/**
 * Items a run may draw one by one inside a single event, per event of limits.maxEvents: the
 * guest's touches precopy applies at a dirty sync, a device's DMA writes. An item costs about a
 * quarter of an event's wall time (21 M touches/s against 2–7 M events/s on the project's
 * machine), so the bound is minutes of wall time, as maxEvents' own.
 */
export const WORK_PER_EVENT = 4;

/**
 * The bound on work inside events, where the event caps cannot reach (1 ns think times over a
 * 600 s horizon, or a device writing 1 TB/s by DMA, looped for hours in one event): once spent,
 * the run stops with the reason, as at the event cap.
 */
export class WorkBudget {
  /** Items left: a double, it passes 2^31. A loop may read it into a local and write it back. */
  left = NaN;

  constructor(private readonly bound: number, private readonly onSpent: (reason: string) => void) {
    this.left = bound;
  }

  /** Takes `n` items; false when fewer are left: the budget is spent, `what` having asked last. */
  take(n: number, what: string): boolean {
    if (n <= this.left) {
      this.left -= n;
      return true;
    }
    this.spent(what);
    return false;
  }

  /** The budget ran out in a loop that counted its own items. */
  spent(what: string): void {
    this.left = 0;
    this.onSpent(`work cap: ${this.bound} items drawn one by one inside events, the last by ${what} (limits.maxEvents × ${WORK_PER_EVENT}: the guest's touches precopy applies at its dirty syncs, devices' DMA writes)`);
  }
}

/** No bound: a dirtier or DMA writer used on its own (library API). */
export const UNBOUNDED = new WorkBudget(Infinity, () => {});
