/**
 * The destination's device-state loads (shared/reference/migration.md §3): QEMU's one load thread
 * handles device data in stream order, so loads are serialized (seed 000's step of ~400 ms per
 * device); newer QEMU loads multifd device state on `threads` load threads in parallel. A load
 * starts when its data has arrived and a thread is free.
 */
export class LoadThreads {
  private readonly freeAt: Float64Array;
  /** Thread time spent loading, summed. */
  busyNs = 0;

  constructor(threads: number) {
    this.freeAt = new Float64Array(threads);
  }

  /** Loads data that arrived at `arrival` for `costNs`; returns when the load is done. */
  load(arrival: number, costNs: number): number {
    let c = 0;
    for (let i = 1; i < this.freeAt.length; i++) if (this.freeAt[i]! < this.freeAt[c]!) c = i;
    const done = Math.max(arrival, this.freeAt[c]!) + costNs;
    this.freeAt[c] = done;
    this.busyNs += costNs;
    return done;
  }

  /** When every load given so far is done. */
  get idleAt(): number {
    let t = 0;
    for (let i = 0; i < this.freeAt.length; i++) t = Math.max(t, this.freeAt[i]!);
    return t;
  }
}
