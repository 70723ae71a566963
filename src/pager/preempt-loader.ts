import type { Kernel } from '../kernel/kernel.ts';
import { InFlight } from '../link/in-flight.ts';
import type { StreamRecord } from '../stream/records.ts';

/** What the preempt thread needs of the pager. */
export interface PreemptHost {
  /** The record was read off the preempt socket. */
  consumed(rec: StreamRecord): void;
  /** What placing the record costs (the main loader's placement costs). */
  cost(rec: StreamRecord): number;
  /** The record's pages were placed. */
  loaded(rec: StreamRecord): void;
}

/**
 * QEMU's `postcopy_preempt_thread` (7.1+): the preempt channel's records are read and placed on
 * a destination thread of their own (`qemu_loadvm_state_main` on the preempt QEMUFile), beside
 * the main loader, so a requested page does not wait for the record the main thread is placing.
 * Idle, the thread sleeps in a read of its socket: a wake-up (`pager.wakeNs`) before a burst.
 */
export class PreemptLoader {
  /** Records read off the socket, not placed yet (the one in progress is `record`). */
  readonly inbox = new InFlight<StreamRecord>();
  record: StreamRecord | null = null;
  private busy = false;
  private readonly startKind: number;
  private readonly doneKind: number;
  /** Time spent placing, ns (a double from the start: see Kernel.now). */
  busyNs = NaN;

  constructor(private readonly kernel: Kernel, private readonly wakeNs: number, private readonly host: PreemptHost) {
    this.busyNs = 0;
    this.startKind = kernel.register(() => this.start());
    this.doneKind = kernel.register(() => this.done());
  }

  receive(rec: StreamRecord): void {
    this.inbox.push(rec);
    if (this.busy) return;
    this.busy = true;
    this.kernel.after(this.wakeNs, this.startKind);
  }

  private start(): void {
    if (this.inbox.length === 0) {
      this.busy = false;
      return;
    }
    const rec = (this.record = this.inbox.shift());
    this.host.consumed(rec);
    const cost = this.host.cost(rec);
    this.busyNs += cost;
    this.kernel.after(cost, this.doneKind);
  }

  private done(): void {
    const rec = this.record!;
    this.record = null;
    this.host.loaded(rec);
    this.start();
  }
}
